/// Linux x86-64's address-space layout and its randomisation (arch/x86/mm/mmap.c,
/// arch/x86/include/asm/elf.h, mm/util.c, arch/x86/kernel/process.c), and
/// personality(2)'s flags (uapi/linux/personality.h), with Linux's names.
public enum LinuxLayout {
    /// vm.mmap_rnd_bits' x86-64 default: arch_mmap_rnd() moves the mmap base
    /// down, and an ET_DYN executable's load bias up, by up to 2^28 pages (1 TiB).
    public static let mmap_rnd_bits: UInt64 = 28
    /// STACK_RND_MASK for 64-bit tasks: randomize_stack_top moves the stack
    /// top down by up to 2^22 pages (16 GiB).
    public static let STACK_RND_MASK: UInt64 = 0x3f_ffff
    /// arch_randomize_brk's range for 64-bit tasks in current kernels (SZ_1G;
    /// older ones used 32 MiB; a static binary's heap here on Linux 6.18 starts
    /// hundreds of MiB past its data): up to 1 GiB above the page after the data.
    public static let brkRandomRange: UInt64 = 0x4000_0000
    /// arch_align_stack: the initial stack pointer moves down by less than
    /// this many bytes below the argument strings.
    public static let stackAlignRandomRange: UInt64 = 8192
}

public enum LinuxPersonality {
    public static let PER_LINUX: UInt32 = 0
    /// Disables address-space layout randomisation (`setarch -R`); kept across exec.
    public static let ADDR_NO_RANDOMIZE: UInt32 = 0x004_0000
    /// Cleared by every exec of a 64-bit program (set_personality_64bit).
    public static let READ_IMPLIES_EXEC: UInt32 = 0x040_0000
    /// personality(0xffffffff) reads the personality without changing it.
    public static let query: UInt32 = 0xffff_ffff
}
