import State
import Synchronization

/// Host and domain names (uname, sethostname), from the spec's `hostname`.
public final class UTSNamespace: Savable, @unchecked Sendable {
    public static let savedTypeName = "sentry.UTSNamespace"
    public static let notSaved: Set<String> = ["lock"]
    public static let savedAs: [String: String] = ["storedHostName": "hostName", "storedDomainName": "domainName"]

    // Guarded by `lock`, a leaf (see VFSLock).
    private let lock = Mutex<Void>(())
    private var storedHostName = "localhost"
    private var storedDomainName = "(none)"

    public init() {}

    public init(hostName: String, domainName: String = "(none)") {
        storedHostName = hostName
        storedDomainName = domainName
    }

    public var hostName: String {
        get { lock.withLock { _ in storedHostName } }
        set { lock.withLock { _ in storedHostName = newValue } }
    }

    public var domainName: String {
        get { lock.withLock { _ in storedDomainName } }
        set { lock.withLock { _ in storedDomainName = newValue } }
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("hostName", hostName)
        try sink.save("domainName", domainName)
    }

    public func load(from source: inout LoadSource) throws {
        storedHostName = try source.load("hostName")
        storedDomainName = try source.load("domainName")
        // sethostname(2)/setdomainname(2): at most 64 bytes.
        for (name, value) in [("hostName", storedHostName), ("domainName", storedDomainName)] {
            try ImageValidation.require(value.utf8.count <= 64 && !value.utf8.contains(0), field: name,
                                        "\(ImageValidation.describe(value)) is longer than 64 bytes or has a NUL")
        }
    }
}
