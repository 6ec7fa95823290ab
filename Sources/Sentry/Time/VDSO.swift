import CShim

/// The Sentry's vDSO (vdso/vdso.c, its bytes in VDSOImage.swift) and its data
/// page, as every process sees them: `[vvar]`, one read-only page the
/// Timekeeper (Clocks) keeps current, then `[vdso]`, the code, which finds
/// the page just below itself. Both live in the MemoryFile's kernel pages
/// (past what it allocates, made fresh with every memfd). An image holds
/// that a process maps them (`SpecialMapping`) and, with the MemoryFile, the
/// code's bytes and the data page's layout version: glibc keeps pointers
/// into the code, so a restore maps the saved code, not this build's.
enum VDSO {
    /// The data page: a `cshim_vdso_params`, the rest zero.
    static let dataSize = Page.size
    /// The code, whole pages.
    static let textSize = (UInt64(VDSOImage.bytes.count) + Page.mask) & ~Page.mask
    /// Both, as the MemoryFile reserves them: the data page, then the code.
    static let size = dataSize + textSize

    /// The data page's layout this build's code reads and its Timekeeper writes.
    static let layoutVersion = UInt64(CSHIM_VDSO_LAYOUT_VERSION)

    /// Writes `code` (this build's, or a restored image's) into a fresh
    /// memfd's kernel pages (`pages`, `size` bytes, zero).
    static func install(_ code: [UInt8], into pages: UnsafeMutableRawPointer) {
        code.withUnsafeBytes { image in
            guard let code = image.baseAddress else { return }
            (pages + Int(dataSize)).copyMemory(from: code, byteCount: image.count)
        }
    }
}

/// A mapping of the kernel's own pages rather than of memory or a file
/// (Linux's special mappings, vm_special_mapping): the vDSO and its data
/// page. Saved by name; a restore maps the restoring kernel's pages again
/// (holding the image's vDSO code: MemoryFile).
public enum SpecialMapping: String, Sendable, CaseIterable {
    case vvar
    case vdso

    /// What /proc/[pid]/maps calls it.
    public var name: String { "[\(rawValue)]" }
    /// Its protection, and the most mprotect may give it: the pages are every process's.
    var protection: Protection { self == .vdso ? [.read, .execute] : .read }
    /// Where its pages start among the MemoryFile's kernel pages, and how many bytes.
    var pages: Range<UInt64> { self == .vvar ? 0..<VDSO.dataSize : VDSO.dataSize..<VDSO.size }
}
