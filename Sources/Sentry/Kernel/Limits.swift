import State

/// Resource limits (getrlimit/setrlimit), per thread group as in Linux.
public struct Limits: SavableStruct, Equatable, Sendable {
    public static let savedTypeName = "sentry.Limits"
    public static let savedAs: [String: String] = ["values": "soft"]

    /// RLIM_INFINITY.
    public static let infinity = UInt64.max

    /// Resource numbers, as in <sys/resource.h>.
    public enum Resource: Int, CaseIterable, Sendable {
        case cpu = 0, fsize, data, stack, core, rss, nproc, nofile, memlock, addressSpace, locks
        case sigpending, msgqueue, nice, rtprio, rttime

        /// The OCI spec's name (`RLIMIT_NOFILE`).
        public var specName: String {
            switch self {
            case .cpu: "RLIMIT_CPU"
            case .fsize: "RLIMIT_FSIZE"
            case .data: "RLIMIT_DATA"
            case .stack: "RLIMIT_STACK"
            case .core: "RLIMIT_CORE"
            case .rss: "RLIMIT_RSS"
            case .nproc: "RLIMIT_NPROC"
            case .nofile: "RLIMIT_NOFILE"
            case .memlock: "RLIMIT_MEMLOCK"
            case .addressSpace: "RLIMIT_AS"
            case .locks: "RLIMIT_LOCKS"
            case .sigpending: "RLIMIT_SIGPENDING"
            case .msgqueue: "RLIMIT_MSGQUEUE"
            case .nice: "RLIMIT_NICE"
            case .rtprio: "RLIMIT_RTPRIO"
            case .rttime: "RLIMIT_RTTIME"
            }
        }
    }

    public struct Limit: Equatable, Sendable {
        public var soft: UInt64
        public var hard: UInt64
        public init(soft: UInt64, hard: UInt64) {
            self.soft = soft
            self.hard = hard
        }
    }

    private var values: [Limit]

    /// The limits a fresh container gets (gVisor's defaults: Linux's init defaults).
    public init() {
        values = Resource.allCases.map { _ in Limit(soft: Limits.infinity, hard: Limits.infinity) }
        self[.stack] = Limit(soft: 8 << 20, hard: Limits.infinity)
        self[.core] = Limit(soft: 0, hard: Limits.infinity)
        self[.nofile] = Limit(soft: 1024, hard: 1_048_576)
        self[.memlock] = Limit(soft: 8 << 20, hard: 8 << 20)
        self[.sigpending] = Limit(soft: 0, hard: 0)
        self[.msgqueue] = Limit(soft: 819_200, hard: 819_200)
        self[.nice] = Limit(soft: 0, hard: 0)
        self[.rtprio] = Limit(soft: 0, hard: 0)
        self[.nproc] = Limit(soft: 0x3fff_ffff, hard: 0x3fff_ffff)
        self[.sigpending] = Limit(soft: 0x3fff_ffff, hard: 0x3fff_ffff)
    }

    public subscript(resource: Resource) -> Limit {
        get { values[resource.rawValue] }
        set { values[resource.rawValue] = newValue }
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("soft", values.map(\.soft))
        try sink.save("hard", values.map(\.hard))
    }

    public init(from source: inout LoadSource) throws {
        self.init()
        let soft: [UInt64] = try source.load("soft")
        let hard: [UInt64] = try source.load("hard")
        guard soft.count == hard.count else { throw StateError.invalidValue("Limits: soft and hard differ in count") }
        // Images from a build that knew fewer resources keep the defaults for the rest.
        for index in 0..<min(soft.count, values.count) {
            // setrlimit(2): EINVAL for soft above hard, EPERM for NOFILE above nr_open.
            try ImageValidation.require(soft[index] <= hard[index], field: "soft[\(index)]",
                                        "the soft limit \(soft[index]) is above the hard limit \(hard[index])")
            if index == Resource.nofile.rawValue {
                try ImageValidation.require(hard[index] <= Process.maxOpenFiles, field: "hard[\(index)]",
                                            "RLIMIT_NOFILE \(hard[index]) is above nr_open \(Process.maxOpenFiles)")
            }
            values[index] = Limit(soft: soft[index], hard: hard[index])
        }
    }
}
