/// Linux's memfd and file-seal ABI with Linux's names (uapi/linux/memfd.h,
/// uapi/linux/fcntl.h, mm/memfd.c).
enum MemfdABI {
    static let MFD_CLOEXEC: UInt32 = 0x1
    static let MFD_ALLOW_SEALING: UInt32 = 0x2
    static let MFD_NOEXEC_SEAL: UInt32 = 0x8
    static let MFD_EXEC: UInt32 = 0x10

    /// MFD_NAME_MAX_LEN: NAME_MAX less the "memfd:" every name gets.
    static let nameMaximum = 255 - 6
    static let namePrefix = "memfd:"

    static let F_ADD_SEALS: Int32 = 1033
    static let F_GET_SEALS: Int32 = 1034

    static let F_SEAL_SEAL: UInt32 = 0x1
    static let F_SEAL_SHRINK: UInt32 = 0x2
    static let F_SEAL_GROW: UInt32 = 0x4
    static let F_SEAL_WRITE: UInt32 = 0x8
    static let F_SEAL_FUTURE_WRITE: UInt32 = 0x10
    static let F_SEAL_EXEC: UInt32 = 0x20
    /// F_ALL_SEALS.
    static let allSeals: UInt32 = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE
        | F_SEAL_EXEC
    /// The execute bits F_SEAL_EXEC keeps from changing.
    static let executeBits: UInt32 = 0o111
}

