import FoundationEssentials

extension Spec {
    /// The Linux-specific part of the spec: what the Sentry emulates rather than what the host enforces.
    public struct Linux: Codable, Sendable, Equatable {
        public var namespaces: [Namespace]
        public var resources: Resources?
        public var seccomp: Seccomp?
        public var uidMappings: [IDMapping]?
        public var gidMappings: [IDMapping]?
        public var maskedPaths: [String]?
        public var readonlyPaths: [String]?
        /// The host cgroup the sandbox joins (`runsc create` makes it: Sources/runsc/Cgroup).
        public var cgroupsPath: String?
        /// The execution domain and flags the container's processes start with.
        public var personality: Personality?

        public init(
            namespaces: [Namespace] = [], resources: Resources? = nil, seccomp: Seccomp? = nil,
            uidMappings: [IDMapping]? = nil, gidMappings: [IDMapping]? = nil,
            maskedPaths: [String]? = nil, readonlyPaths: [String]? = nil, cgroupsPath: String? = nil,
            personality: Personality? = nil
        ) {
            self.namespaces = namespaces
            self.resources = resources
            self.seccomp = seccomp
            self.uidMappings = uidMappings
            self.gidMappings = gidMappings
            self.maskedPaths = maskedPaths
            self.readonlyPaths = readonlyPaths
            self.cgroupsPath = cgroupsPath
            self.personality = personality
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            namespaces = try c.decodeIfPresent([Namespace].self, forKey: .namespaces) ?? []
            // Resources are applied through the host cgroup only when cgroupsPath names one, so a
            // section we cannot read is dropped rather than failing the whole config.
            resources = (try? c.decodeIfPresent(Resources.self, forKey: .resources)) ?? nil
            seccomp = try c.decodeIfPresent(Seccomp.self, forKey: .seccomp)
            uidMappings = try c.decodeIfPresent([IDMapping].self, forKey: .uidMappings)
            gidMappings = try c.decodeIfPresent([IDMapping].self, forKey: .gidMappings)
            maskedPaths = try c.decodeIfPresent([String].self, forKey: .maskedPaths)
            readonlyPaths = try c.decodeIfPresent([String].self, forKey: .readonlyPaths)
            cgroupsPath = try c.decodeIfPresent(String.self, forKey: .cgroupsPath)
            personality = try c.decodeIfPresent(Personality.self, forKey: .personality)
        }
    }

    /// `linux.personality` (personality(2)): the domain, which must be
    /// "LINUX" here (no 32-bit processes), and flags by their Linux names, of
    /// which only "ADDR_NO_RANDOMIZE" is known: the processes start with it,
    /// as under `setarch -R`, so their address-space layout does not change
    /// from run to run. runc ignores the flags; the spec leaves them open.
    public struct Personality: Codable, Sendable, Equatable {
        public var domain: String
        public var flags: [String]?

        public static let knownDomains: Set<String> = ["LINUX"]
        public static let knownFlags: Set<String> = ["ADDR_NO_RANDOMIZE"]

        public init(domain: String = "LINUX", flags: [String]? = nil) {
            self.domain = domain
            self.flags = flags
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            domain = try c.decodeIfPresent(String.self, forKey: .domain) ?? ""
            flags = try c.decodeIfPresent([String].self, forKey: .flags)
        }
    }

    /// A namespace to create (no `path`) or join (`path`).
    public struct Namespace: Codable, Sendable, Equatable {
        public var type: String
        public var path: String?

        /// The namespace types runtime-spec 1.x defines.
        public static let knownTypes: Set<String> = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]

        public init(type: String, path: String? = nil) {
            self.type = type
            self.path = path
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decodeIfPresent(String.self, forKey: .type) ?? ""
            path = try c.decodeIfPresent(String.self, forKey: .path)
        }
    }

    public struct IDMapping: Codable, Sendable, Equatable {
        public var containerID: UInt32
        public var hostID: UInt32
        public var size: UInt32

        public init(containerID: UInt32, hostID: UInt32, size: UInt32) {
            self.containerID = containerID
            self.hostID = hostID
            self.size = size
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            containerID = try c.decodeInteger(UInt32.self, forKey: .containerID)
            hostID = try c.decodeInteger(UInt32.self, forKey: .hostID)
            size = try c.decodeInteger(UInt32.self, forKey: .size)
        }
    }

    /// The subset of cgroup resources we read; each field decodes on its own so one
    /// odd value (a string where a number belongs) loses only that value.
    public struct Resources: Codable, Sendable, Equatable {
        public var memory: Memory?
        public var cpu: CPU?
        public var pids: Pids?

        public init(memory: Memory? = nil, cpu: CPU? = nil, pids: Pids? = nil) {
            self.memory = memory
            self.cpu = cpu
            self.pids = pids
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            memory = c.lenient(Memory.self, .memory)
            cpu = c.lenient(CPU.self, .cpu)
            pids = c.lenient(Pids.self, .pids)
        }

        public struct Memory: Codable, Sendable, Equatable {
            public var limit: Int64?
            public var reservation: Int64?
            public var swap: Int64?
            public var swappiness: UInt64?

            public init(limit: Int64? = nil, reservation: Int64? = nil, swap: Int64? = nil, swappiness: UInt64? = nil) {
                self.limit = limit
                self.reservation = reservation
                self.swap = swap
                self.swappiness = swappiness
            }

            public init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                limit = c.lenient(Int64.self, .limit)
                reservation = c.lenient(Int64.self, .reservation)
                swap = c.lenient(Int64.self, .swap)
                swappiness = c.lenient(UInt64.self, .swappiness)
            }
        }

        public struct CPU: Codable, Sendable, Equatable {
            public var shares: UInt64?
            public var quota: Int64?
            public var period: UInt64?
            public var cpus: String?
            public var mems: String?

            public init(shares: UInt64? = nil, quota: Int64? = nil, period: UInt64? = nil, cpus: String? = nil, mems: String? = nil) {
                self.shares = shares
                self.quota = quota
                self.period = period
                self.cpus = cpus
                self.mems = mems
            }

            public init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                shares = c.lenient(UInt64.self, .shares)
                quota = c.lenient(Int64.self, .quota)
                period = c.lenient(UInt64.self, .period)
                cpus = c.lenient(String.self, .cpus)
                mems = c.lenient(String.self, .mems)
            }
        }

        public struct Pids: Codable, Sendable, Equatable {
            public var limit: Int64?

            public init(limit: Int64? = nil) {
                self.limit = limit
            }

            public init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                limit = c.lenient(Int64.self, .limit)
            }
        }
    }

    /// The application's seccomp filter, which the Sentry applies to emulated syscalls
    /// (`parsed()` in Spec+Seccomp.swift checks it).
    public struct Seccomp: Codable, Sendable, Equatable {
        public var defaultAction: String
        public var defaultErrnoRet: UInt32?
        public var architectures: [String]?
        public var flags: [String]?
        public var listenerPath: String?
        public var syscalls: [Syscall]

        public init(defaultAction: String, defaultErrnoRet: UInt32? = nil, architectures: [String]? = nil,
                    flags: [String]? = nil, listenerPath: String? = nil, syscalls: [Syscall] = []) {
            self.defaultAction = defaultAction
            self.defaultErrnoRet = defaultErrnoRet
            self.architectures = architectures
            self.flags = flags
            self.listenerPath = listenerPath
            self.syscalls = syscalls
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            defaultAction = try c.decodeIfPresent(String.self, forKey: .defaultAction) ?? ""
            defaultErrnoRet = try c.decodeIntegerIfPresent(UInt32.self, forKey: .defaultErrnoRet)
            architectures = try c.decodeIfPresent([String].self, forKey: .architectures)
            flags = try c.decodeIfPresent([String].self, forKey: .flags)
            listenerPath = try c.decodeIfPresent(String.self, forKey: .listenerPath)
            syscalls = try c.decodeIfPresent([Syscall].self, forKey: .syscalls) ?? []
        }

        public struct Syscall: Codable, Sendable, Equatable {
            public var names: [String]
            public var action: String
            public var errnoRet: UInt32?
            public var args: [Arg]?

            public init(names: [String], action: String, errnoRet: UInt32? = nil, args: [Arg]? = nil) {
                self.names = names
                self.action = action
                self.errnoRet = errnoRet
                self.args = args
            }

            public init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                names = try c.decodeIfPresent([String].self, forKey: .names) ?? []
                action = try c.decodeIfPresent(String.self, forKey: .action) ?? ""
                errnoRet = try c.decodeIntegerIfPresent(UInt32.self, forKey: .errnoRet)
                args = try c.decodeIfPresent([Arg].self, forKey: .args)
            }
        }

        /// A comparison of one syscall argument (`op` is `SCMP_CMP_EQ` and friends).
        public struct Arg: Codable, Sendable, Equatable {
            public var index: UInt32
            public var value: UInt64
            public var valueTwo: UInt64?
            public var op: String

            public init(index: UInt32, value: UInt64, valueTwo: UInt64? = nil, op: String) {
                self.index = index
                self.value = value
                self.valueTwo = valueTwo
                self.op = op
            }
        }
    }
}

extension KeyedDecodingContainer {
    /// Decodes a value that may be absent or malformed, treating both as absent.
    func lenient<T: Decodable>(_ type: T.Type, _ key: Key) -> T? {
        (try? decodeIfPresent(type, forKey: key)) ?? nil
    }
}
