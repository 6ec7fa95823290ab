import Platform

/// The CPU features a saved task relies on: its XSAVE area holds the state
/// components in XCR0 and has the host's layout size. An image records
/// them; a restore refuses a host that lacks any (its FP state could not be
/// loaded, or the program would fault on an instruction it used before).
struct CPUFeatures: Equatable, Sendable {
    var xsaveFeatures: UInt64
    var xsaveSize: Int

    static var current: CPUFeatures {
        CPUFeatures(xsaveFeatures: FloatingPointState.hostFeatures, xsaveSize: FloatingPointState.hostSize)
    }

    var manifestEntries: [String] {
        ["xsave-features:0x" + String(xsaveFeatures, radix: 16), "xsave-size:\(xsaveSize)"]
    }

    /// Reads an image's entries; unknown ones are refused, as we cannot tell whether this host has them.
    init(manifestEntries entries: [String]) throws(LoaderError) {
        var features: UInt64?
        var size: Int?
        for entry in entries {
            if entry.hasPrefix("xsave-features:0x") {
                features = UInt64(entry.dropFirst("xsave-features:0x".count), radix: 16)
            } else if entry.hasPrefix("xsave-size:") {
                size = Int(entry.dropFirst("xsave-size:".count))
            } else {
                throw LoaderError("the image relies on CPU feature \"\(entry)\", which this runtime does not know")
            }
        }
        guard let features, let size else {
            throw LoaderError("the image does not say which CPU features it relies on (xsave-features, xsave-size)")
        }
        self.init(xsaveFeatures: features, xsaveSize: size)
    }

    init(xsaveFeatures: UInt64, xsaveSize: Int) {
        self.xsaveFeatures = xsaveFeatures
        self.xsaveSize = xsaveSize
    }

    /// Throws unless this host can run tasks saved with `saved`'s features.
    func check(canRestore saved: CPUFeatures) throws(LoaderError) {
        let missing = saved.xsaveFeatures & ~xsaveFeatures
        guard missing == 0 else {
            throw LoaderError("this host's CPU lacks XSAVE state components 0x\(String(missing, radix: 16)) "
                + "that the image relies on (image 0x\(String(saved.xsaveFeatures, radix: 16)), "
                + "host 0x\(String(xsaveFeatures, radix: 16))); restore it on a host with the same CPU features")
        }
        guard saved.xsaveSize <= xsaveSize else {
            throw LoaderError("the image's XSAVE area (\(saved.xsaveSize) bytes) is larger than this host's (\(xsaveSize))")
        }
    }
}
