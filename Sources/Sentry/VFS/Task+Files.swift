/// What the file syscalls need from a task: its credentials as the VFS checks
/// them, where paths start, its FD limit, and how it blocks.
extension Task {
    public var fileCredentials: FileCredentials { credentials.fileCredentials }

    /// The kernel's VFS; EIO if the kernel was built without one.
    public func virtualFilesystem() throws(SyscallError) -> VirtualFilesystem {
        guard let vfs = kernel?.vfs else { throw .eio }
        return vfs
    }

    /// Root, working directory, credentials and PID for a path walk.
    public func pathContext() throws(SyscallError) -> PathContext {
        PathContext(root: try fsContext.root(), workingDirectory: try fsContext.workingDirectory(),
                    credentials: fileCredentials, processID: processID, threadID: id)
    }

    /// RLIMIT_NOFILE's soft limit, the bound on new descriptor numbers.
    public var fileDescriptorLimit: Int32 {
        guard let limit = threadGroup?.limits[.nofile].soft else { return 1024 }
        return Int32(clamping: limit)
    }

    /// A write to a pipe with no reader: SIGPIPE to the writer.
    func sendPipeSignal() {
        try? threadGroup?.send(SignalInfo(signal: .pipe, code: LinuxSignal.SI_USER, senderPID: processID,
                                          senderUID: credentials.realUID), to: self, from: self)
    }
}

extension Credentials {
    /// These credentials as the VFS checks them (also before a task exists:
    /// createProcess): the filesystem IDs, as Linux's permission checks use.
    public var fileCredentials: FileCredentials {
        FileCredentials(uid: filesystemUID, gid: filesystemGID, groups: supplementaryGIDs,
                        overridesPermissions: hasCapability(LinuxCapability.CAP_DAC_OVERRIDE),
                        ownsEverything: hasCapability(LinuxCapability.CAP_FOWNER),
                        mayChown: hasCapability(LinuxCapability.CAP_CHOWN),
                        mayKeepSetGroupID: hasCapability(LinuxCapability.CAP_FSETID))
    }
}
