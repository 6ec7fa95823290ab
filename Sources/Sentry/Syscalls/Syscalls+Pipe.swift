/// pipe(2) and pipe2(2) (fs/pipe.c).
extension SyscallTable {
    mutating func registerFilePipe() {
        register(22, PipeSyscalls.pipe)
        register(293, PipeSyscalls.pipe2)
    }
}

enum PipeSyscalls {
    static func pipe(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try makePipe(task, address: args.pointer(0), flags: 0)
    }

    static func pipe2(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let flags = args.uint(1)
        guard flags & ~(LinuxFile.closeOnExec | LinuxFile.nonBlocking | LinuxFile.direct) == 0 else { throw .einval }
        return try makePipe(task, address: args.pointer(0), flags: flags)
    }

    /// Installs both ends, then writes the two numbers; if that faults, both
    /// are closed again so the failed call leaves no descriptors behind.
    private static func makePipe(_ task: Task, address: UInt64, flags: UInt32) throws(SyscallError) -> Int64 {
        let (reader, writer) = Pipe.makePair(flags: flags)
        let closeOnExec = flags & LinuxFile.closeOnExec != 0
        let limit = task.fileDescriptorLimit
        let readFD = try task.fdTable.install(reader, closeOnExec: closeOnExec, limit: limit)
        let writeFD: Int32
        do {
            writeFD = try task.fdTable.install(writer, closeOnExec: closeOnExec, limit: limit)
        } catch {
            try? task.fdTable.remove(readFD)
            writer.released()
            throw error
        }
        do {
            try task.copyOut(value: (readFD, writeFD), to: address)
        } catch {
            try? task.fdTable.remove(readFD)
            try? task.fdTable.remove(writeFD)
            throw error
        }
        return 0
    }
}
