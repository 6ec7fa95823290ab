import FoundationEssentials

/// The OCI runtime-spec 1.x `config.json` of a bundle.
///
/// Every type decodes leniently: unknown fields are ignored and missing fields take
/// their defaults, so configs written by other tools (runc, Docker, containerd) load.
/// `Bundle.load(directory:)` checks afterwards what this runtime needs.
public struct Spec: Codable, Sendable, Equatable {
    public var ociVersion: String
    public var process: Process?
    public var root: Root?
    public var hostname: String?
    public var mounts: [Mount]
    public var annotations: [String: String]?
    public var linux: Linux?

    /// The runtime-spec version this runtime writes.
    public static let currentVersion = "1.1.0"

    public init(
        ociVersion: String = Spec.currentVersion, process: Process? = nil, root: Root? = nil,
        hostname: String? = nil, mounts: [Mount] = [], annotations: [String: String]? = nil,
        linux: Linux? = nil
    ) {
        self.ociVersion = ociVersion
        self.process = process
        self.root = root
        self.hostname = hostname
        self.mounts = mounts
        self.annotations = annotations
        self.linux = linux
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ociVersion = try c.decodeIfPresent(String.self, forKey: .ociVersion) ?? ""
        process = try c.decodeIfPresent(Process.self, forKey: .process)
        root = try c.decodeIfPresent(Root.self, forKey: .root)
        hostname = try c.decodeIfPresent(String.self, forKey: .hostname)
        mounts = try c.decodeIfPresent([Mount].self, forKey: .mounts) ?? []
        annotations = try c.decodeIfPresent([String: String].self, forKey: .annotations)
        linux = try c.decodeIfPresent(Linux.self, forKey: .linux)
    }

    /// The container's init process.
    public struct Process: Codable, Sendable, Equatable {
        public var terminal: Bool
        public var user: User
        public var args: [String]
        public var env: [String]
        public var cwd: String
        public var capabilities: Capabilities?
        public var rlimits: [Rlimit]
        public var noNewPrivileges: Bool

        public init(
            terminal: Bool = false, user: User = User(), args: [String] = [], env: [String] = [],
            cwd: String = "/", capabilities: Capabilities? = nil, rlimits: [Rlimit] = [],
            noNewPrivileges: Bool = false
        ) {
            self.terminal = terminal
            self.user = user
            self.args = args
            self.env = env
            self.cwd = cwd
            self.capabilities = capabilities
            self.rlimits = rlimits
            self.noNewPrivileges = noNewPrivileges
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            terminal = try c.decodeIfPresent(Bool.self, forKey: .terminal) ?? false
            user = try c.decodeIfPresent(User.self, forKey: .user) ?? User()
            args = try c.decodeIfPresent([String].self, forKey: .args) ?? []
            env = try c.decodeIfPresent([String].self, forKey: .env) ?? []
            cwd = try c.decodeIfPresent(String.self, forKey: .cwd) ?? ""
            capabilities = try c.decodeIfPresent(Capabilities.self, forKey: .capabilities)
            rlimits = try c.decodeIfPresent([Rlimit].self, forKey: .rlimits) ?? []
            noNewPrivileges = try c.decodeIfPresent(Bool.self, forKey: .noNewPrivileges) ?? false
        }
    }

    /// Credentials of the init process, as IDs inside the container.
    public struct User: Codable, Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32
        public var additionalGids: [UInt32]?
        public var umask: UInt32?

        public init(uid: UInt32 = 0, gid: UInt32 = 0, additionalGids: [UInt32]? = nil, umask: UInt32? = nil) {
            self.uid = uid
            self.gid = gid
            self.additionalGids = additionalGids
            self.umask = umask
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            uid = try c.decodeIntegerIfPresent(UInt32.self, forKey: .uid) ?? 0
            gid = try c.decodeIntegerIfPresent(UInt32.self, forKey: .gid) ?? 0
            additionalGids = try c.decodeIfPresent([UInt32].self, forKey: .additionalGids)
            umask = try c.decodeIntegerIfPresent(UInt32.self, forKey: .umask)
        }
    }

    /// Capability sets by name (`CAP_KILL`, ...).
    public struct Capabilities: Codable, Sendable, Equatable {
        public var bounding: [String]?
        public var effective: [String]?
        public var inheritable: [String]?
        public var permitted: [String]?
        public var ambient: [String]?

        public init(
            bounding: [String]? = nil, effective: [String]? = nil, inheritable: [String]? = nil,
            permitted: [String]? = nil, ambient: [String]? = nil
        ) {
            self.bounding = bounding
            self.effective = effective
            self.inheritable = inheritable
            self.permitted = permitted
            self.ambient = ambient
        }

        /// Linux's capability names in bit order (bit N is `names[N]`),
        /// CAP_CHOWN to CAP_CHECKPOINT_RESTORE (CAP_LAST_CAP 40, Linux 5.9+).
        public static let names = [
            "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
            "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
            "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
            "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
            "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
            "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
            "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
            "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
        ]

        /// The bit mask of `names`; unknown names are ignored, as runc does.
        public static func mask(_ names: [String]?) -> UInt64 {
            var mask: UInt64 = 0
            for name in names ?? [] {
                if let bit = Self.names.firstIndex(of: name) { mask |= 1 << UInt64(bit) }
            }
            return mask
        }
    }

    /// One resource limit, named as in setrlimit(2) (`RLIMIT_NOFILE`).
    public struct Rlimit: Codable, Sendable, Equatable {
        public var type: String
        public var hard: UInt64
        public var soft: UInt64

        public init(type: String, hard: UInt64, soft: UInt64) {
            self.type = type
            self.hard = hard
            self.soft = soft
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(String.self, forKey: .type)
            hard = try c.decodeInteger(UInt64.self, forKey: .hard)
            soft = try c.decodeInteger(UInt64.self, forKey: .soft)
        }
    }

    /// The container's root filesystem; `path` is relative to the bundle unless absolute.
    public struct Root: Codable, Sendable, Equatable {
        public var path: String
        public var readonly: Bool

        public init(path: String, readonly: Bool = false) {
            self.path = path
            self.readonly = readonly
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            path = try c.decodeIfPresent(String.self, forKey: .path) ?? ""
            readonly = try c.decodeIfPresent(Bool.self, forKey: .readonly) ?? false
        }
    }

    public struct Mount: Codable, Sendable, Equatable {
        public var destination: String
        public var type: String?
        public var source: String?
        public var options: [String]?

        public init(destination: String, type: String? = nil, source: String? = nil, options: [String]? = nil) {
            self.destination = destination
            self.type = type
            self.source = source
            self.options = options
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            destination = try c.decodeIfPresent(String.self, forKey: .destination) ?? ""
            type = try c.decodeIfPresent(String.self, forKey: .type)
            source = try c.decodeIfPresent(String.self, forKey: .source)
            options = try c.decodeIfPresent([String].self, forKey: .options)
        }
    }
}

extension KeyedDecodingContainer {
    /// Decodes an integer, naming the field when the number does not fit: JSONDecoder
    /// reports an out-of-range number (a uid of -1) without saying where it was.
    func decodeIntegerIfPresent<T: FixedWidthInteger & Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        return try decodeInteger(type, forKey: key)
    }

    func decodeInteger<T: FixedWidthInteger & Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        if let value = try? decode(T.self, forKey: key) { return value }
        let range = "\(T.min)...\(T.max)"
        if let number = try? decode(Int64.self, forKey: key) {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "\(number) is out of range \(range)")
        }
        if let number = try? decode(Double.self, forKey: key) {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: self, debugDescription: "\(number) is not an integer in \(range)")
        }
        return try decode(T.self, forKey: key)
    }
}
