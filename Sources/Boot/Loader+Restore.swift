import Glibc
import Logging
import OCI
import Platform
import Sentry
import State

/// The Loader's restore path (gVisor's loader.go restore): instead of a new
/// init process, the Kernel comes from an image. The image is checked before
/// anything is built (manifest, frames, architecture, CPU features); pages
/// go into a fresh MemoryFile, decompressed in parallel; host filesystems
/// are reattached (the root moved to the new bundle's rootfs) and their open
/// files reopened by path; the new stdio takes host FDs 256-258. Stubs are
/// created when the tasks start, and their mappings come back lazily
/// through the fault path. CLOCK_MONOTONIC continues from the saved value
/// (Clocks.afterLoad).
extension Loader {
    public static func restore(image imagePath: String, args: LoaderArgs,
                               logger: Logger = Logger(label: "boot")) throws(LoaderError) -> Loader {
        let seccomp = try seccompFilter(args.spec)
        let restored = try restoreKernel(image: imagePath, args: args, logger: logger)
        signal(SIGPIPE, SIG_IGN)
        quietChildStops()
        try moveStdio(args.stdioFDs)
        return Loader(args: args, restored: restored,
                      processMetadata: restored.manifest.metadata[processKey] ?? processMetadata(args.spec),
                      seccomp: seccomp, logger: logger)
    }

    /// A kernel built from an image with its tasks, not started; the
    /// container's stdio is wherever host FDs 256-258 are. Shared by
    /// `restore` and the save/restore test mode's cycles.
    struct RestoredKernel {
        var kernel: Kernel
        var initTask: Task
        var tasks: [Task]
        var manifest: ImageManifest
    }

    static func restoreKernel(image imagePath: String, args: LoaderArgs,
                              logger: Logger) throws(LoaderError) -> RestoredKernel {
        var timer = PhaseTimer()
        let reader: ImageReader
        do {
            reader = try ImageReader(directory: imagePath)
        } catch {
            throw LoaderError("cannot restore from \(imagePath): \(error)")
        }
        let manifest = reader.manifest
        try checkCompatible(manifest, imagePath: imagePath)

        timer.mark("image checks")
        let kernel: Kernel
        do {
            let state = try reader.readState()
            kernel = try StateDecoder(registry: SentryStateTypes.registry).decode(state, as: Kernel.self)
        } catch {
            throw LoaderError("cannot restore from \(imagePath): the kernel state is unreadable: \(error)")
        }
        timer.mark("state")
        kernel.memoryFile.limit = memoryLimit(args.spec)
        try loadPages(reader, into: kernel.memoryFile, imagePath: imagePath, logger: logger)
        timer.mark("pages.img checks")

        var kernelLogger = logger
        kernelLogger[metadataKey: "container"] = "\(args.containerID)"
        kernel.configureHost(countSyscalls: args.configuration.countSyscalls, logger: kernelLogger)
        try reattachFiles(kernel, rootfs: args.rootfs, spec: args.spec)
        if let vfs = kernel.vfs {
            let differences = bundleDifferences(metadata: manifest.metadata, spec: args.spec, vfs: vfs,
                                                mounts: try containerMounts(args.spec))
            if !differences.isEmpty {
                logger.warning("restore: the bundle differs from the checkpoint's: \(differences.joined(separator: "; ")); the image's process and mounts are used")
            }
        }

        var seen = Set<ObjectIdentifier>()
        // A task listed twice (a hostile image) must not get two threads.
        let tasks = kernel.pidNamespace.allThreadGroups.filter { !$0.finished }.flatMap(\.members)
            .filter { seen.insert(ObjectIdentifier($0)).inserted }
        guard let initGroup = kernel.initThreadGroup, let initTask = initGroup.leader ?? tasks.first,
              !tasks.isEmpty, initGroup.exitStatus == nil else {
            throw LoaderError("cannot restore from \(imagePath): the image holds no running process")
        }
        for task in tasks {
            guard task.kernel === kernel, task.mm != nil, task.threadGroup != nil else {
                throw LoaderError("cannot restore from \(imagePath): task \(task.id) lacks its kernel, memory or thread group")
            }
            try fitFloatingPoint(task, imagePath: imagePath)
        }

        timer.mark("files and tasks")
        logger.debug("restored \(tasks.count) task(s) from \(imagePath): \(timer.description)")
        return RestoredKernel(kernel: kernel, initTask: initTask, tasks: tasks, manifest: manifest)
    }

    private static func checkCompatible(_ manifest: ImageManifest, imagePath: String) throws(LoaderError) {
        guard manifest.architecture == ImageInfo.hostArchitecture else {
            throw LoaderError("cannot restore from \(imagePath): the image is for \(manifest.architecture), "
                + "this host is \(ImageInfo.hostArchitecture)")
        }
        do {
            try CPUFeatures.current.check(canRestore: CPUFeatures(manifestEntries: manifest.cpuFeatures))
        } catch {
            throw LoaderError("cannot restore from \(imagePath): \(error)")
        }
    }

    /// Checks all of `pages.img` and starts loading it into the new
    /// MemoryFile (created empty by its afterLoad) in the background: the
    /// program runs again before a large memory is all in place, and any
    /// access to a range not yet loaded loads it first (MemoryFile.ensureLoaded).
    private static func loadPages(_ reader: ImageReader, into memoryFile: MemoryFile, imagePath: String,
                                  logger: Logger) throws(LoaderError) {
        guard let base = memoryFile.base else {
            throw LoaderError("cannot restore from \(imagePath): the memory file is not mapped")
        }
        guard reader.requiredMemorySize <= memoryFile.capacity else {
            throw LoaderError("cannot restore from \(imagePath): pages.img reaches \(reader.requiredMemorySize) bytes, "
                + "past the saved memory file's \(memoryFile.capacity)")
        }
        let loader: PagesLoader
        do {
            loader = try reader.pagesLoader(into: UnsafeMutableRawBufferPointer(start: base, count: Int(memoryFile.capacity))) {
                result in
                switch result {
                case .success(let nanoseconds):
                    logger.debug("restore: memory loaded in the background in \(nanoseconds / 1_000_000) ms")
                case .failure(let error):
                    logger.error("restore: the container's memory cannot be loaded, accesses to it fail: \(error)")
                }
            }
        } catch {
            throw LoaderError("cannot restore from \(imagePath): \(error)")
        }
        memoryFile.beginLoading(loader)
        loader.start(workers: reader.workers)
    }

    /// Host files: the root hostfs moves from the saved rootfs to this bundle's;
    /// every other host mount to the directory this bundle's spec binds at the
    /// same place (a migration's may differ), refused with its place when the
    /// spec binds none there: an image must not choose what of the host a
    /// container sees. procfs shows this kernel again.
    private static func reattachFiles(_ kernel: Kernel, rootfs: String, spec: Spec) throws(LoaderError) {
        guard let vfs = kernel.vfs else { throw LoaderError("cannot restore: the image has no filesystem") }
        var bound: [String: String] = [:]
        for mount in try containerMounts(spec) {
            if case .host(let path) = mount.kind { bound[mount.destination] = path }
        }
        do {
            try vfs.reattachHostFilesystems { target, _ in target == "/" ? rootfs : bound[target] }
        } catch {
            throw LoaderError("cannot restore: \(error)")
        }
        for procfs in vfs.procFilesystems { procfs.source = KernelProcSource(kernel: kernel) }
    }

    /// A saved XSAVE area smaller than this host's (a subset of its
    /// features, checked above) is padded: the components it lacks read as
    /// their initial state, which XSTATE_BV already says.
    private static func fitFloatingPoint(_ task: Task, imagePath: String) throws(LoaderError) {
        let size = task.floatingPoint.bytes.count
        guard size >= 576, size <= FloatingPointState.hostSize else {
            throw LoaderError("cannot restore from \(imagePath): task \(task.id) has an XSAVE area of \(size) bytes")
        }
        if size < FloatingPointState.hostSize {
            task.floatingPoint.bytes += [UInt8](repeating: 0, count: FloatingPointState.hostSize - size)
        }
    }
}
