/// How mmap finds the file behind a descriptor: the description itself, or
/// its inode, may adopt `MappableFile` (the VFS decides which).
extension Task {
    func mappableFile(fd: Int32) throws(SyscallError) -> (file: any MappableFile, readable: Bool, writable: Bool) {
        let description = try fdTable.get(fd)
        let mappable = (description as? any MappableFile) ?? (description.inode as? any MappableFile)
        guard let mappable else { throw .enodev }
        return (mappable, description.isReadable, description.isWritable)
    }
}
