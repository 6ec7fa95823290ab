import CShim

extension FloatingPointState {
    /// The XSAVE state components this host enables (XCR0). A saved XSAVE
    /// area may hold any of them, so a restoring host must enable them all.
    public static let hostFeatures = cshim_xsave_features()
}
