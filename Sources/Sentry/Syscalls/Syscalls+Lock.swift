/// Advisory file locks: flock(2) and fcntl's record-lock commands (fs/locks.c).
/// The locks live in the inode's `FileLocks`; a blocked request waits on the
/// task's Waiter and is interrupted as any wait (ERESTARTSYS: restarted under
/// SA_RESTART, else EINTR).
enum LockSyscalls {
    /// flock(2), in the syscall's order: LOCK_MAND is ignored, an unknown
    /// operation is EINVAL, then EBADF for a bad or O_PATH descriptor or a
    /// lock on one open for neither reading nor writing.
    static func flock(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let command = args.uint(1)
        if command & LockABI.LOCK_MAND != 0 { return 0 }
        let exclusive: Bool?
        switch command & ~LockABI.LOCK_NB {
        case LockABI.LOCK_SH: exclusive = false
        case LockABI.LOCK_EX: exclusive = true
        case LockABI.LOCK_UN: exclusive = nil
        default: throw .einval
        }
        let file = try task.fdTable.get(args.int(0))
        guard !file.isPathOnly else { throw .ebadf }
        if exclusive != nil, !file.isReadable, !file.isWritable { throw .ebadf }
        guard let inode = file.inode else { throw .einval }
        let mayWait = exclusive != nil && command & LockABI.LOCK_NB == 0
        try inode.locks.flock(file, exclusive: exclusive, waiter: mayWait ? task.waiter : nil)
        return 0
    }

    /// F_GETLK, F_SETLK, F_SETLKW and their OFD forms (fcntl_getlk,
    /// fcntl_setlk), each check where Linux makes it.
    static func recordLock(_ task: Task, _ file: FileDescription, command: Int32,
                           address: UInt64) throws(SyscallError) -> Int64 {
        var flock = try task.copyIn(from: address, count: LockABI.flockSize)
        let type = field(Int16.self, of: flock, at: LockABI.typeOffset)
        let isOpenFileLock = [LockABI.F_OFD_GETLK, LockABI.F_OFD_SETLK, LockABI.F_OFD_SETLKW].contains(command)
        let isTest = command == LockABI.F_GETLK || command == LockABI.F_OFD_GETLK
        if isTest, type != LockABI.F_RDLCK, type != LockABI.F_WRLCK { throw .einval }
        let range = try lockRange(file, flock)
        guard [LockABI.F_RDLCK, LockABI.F_WRLCK, LockABI.F_UNLCK].contains(type) else { throw .einval }
        if !isTest {
            if type == LockABI.F_RDLCK, !file.isReadable { throw .ebadf }
            if type == LockABI.F_WRLCK, !file.isWritable { throw .ebadf }
        }
        if isOpenFileLock, field(Int32.self, of: flock, at: LockABI.pidOffset) != 0 { throw .einval }
        guard let inode = file.inode else { throw .einval }
        let isWrite = type == LockABI.F_WRLCK
        let request = isOpenFileLock
            ? RecordLock(description: file, isWrite: isWrite, start: range.lowerBound, end: range.upperBound)
            : RecordLock(process: task.fdTable, isWrite: isWrite, start: range.lowerBound, end: range.upperBound,
                         pid: task.processID)
        if isTest {
            guard let holder = inode.locks.conflictingRecord(with: request) else {
                setField(LockABI.F_UNLCK, in: &flock, at: LockABI.typeOffset)
                try task.copyOut(flock, to: address)
                return 0
            }
            setField(holder.isWrite ? LockABI.F_WRLCK : LockABI.F_RDLCK, in: &flock, at: LockABI.typeOffset)
            setField(Int16(0), in: &flock, at: LockABI.whenceOffset)
            setField(holder.start, in: &flock, at: LockABI.startOffset)
            let length = holder.end == LockABI.offsetMaximum ? 0 : holder.end - holder.start + 1
            setField(length, in: &flock, at: LockABI.lengthOffset)
            setField(holder.pid, in: &flock, at: LockABI.pidOffset)
            try task.copyOut(flock, to: address)
            return 0
        }
        let waits = command == LockABI.F_SETLKW || command == LockABI.F_OFD_SETLKW
        try inode.locks.setRecord(request, isUnlock: type == LockABI.F_UNLCK, waiter: waits ? task.waiter : nil)
        return 0
    }

    /// flock64_to_posix_lock: the range `l_whence`, `l_start` and `l_len`
    /// name, EINVAL for an unknown whence or a start before 0, EOVERFLOW for
    /// an end past OFFSET_MAX.
    private static func lockRange(_ file: FileDescription, _ flock: [UInt8]) throws(SyscallError) -> ClosedRange<Int64> {
        let whence = Int32(field(Int16.self, of: flock, at: LockABI.whenceOffset))
        let base: Int64
        switch whence {
        case LinuxFile.seekSet: base = 0
        case LinuxFile.seekCurrent: base = file.lock.withLock { _ in file.offset }
        case LinuxFile.seekEnd: base = try file.attributes().size
        default: throw .einval
        }
        let start = field(Int64.self, of: flock, at: LockABI.startOffset)
        let length = field(Int64.self, of: flock, at: LockABI.lengthOffset)
        guard start <= LockABI.offsetMaximum - base else { throw .eoverflow }
        let first = base + start
        guard first >= 0 else { throw .einval }
        if length > 0 {
            guard length - 1 <= LockABI.offsetMaximum - first else { throw .eoverflow }
            return first...(first + (length - 1))
        }
        if length < 0 {
            guard first + length >= 0 else { throw .einval }
            return (first + length)...(first - 1)
        }
        return first...LockABI.offsetMaximum
    }

    private static func field<T: FixedWidthInteger>(_ type: T.Type, of bytes: [UInt8], at offset: Int) -> T {
        bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }

    private static func setField<T: FixedWidthInteger>(_ value: T, in bytes: inout [UInt8], at offset: Int) {
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: value, toByteOffset: offset, as: T.self) }
    }
}
