@testable import Sentry
import State
import Testing

/// SEM_UNDO adjustments come from the image, and semop and exit index a
/// set's semaphores with them: one that does not fit its set is refused.
@Suite struct SemaphoreImageTests {
    static func kernelWithASet() throws -> (Kernel, SemaphoreSet) {
        let (kernel, task) = try KernelState().makeKernel()
        let registry = kernel.semaphores
        let set = try registry.lock.withLock { _ throws(SyscallError) -> SemaphoreSet in
            try registry.slots.get(key: LinuxIPC.IPC_PRIVATE, flags: 0o600, credentials: task.credentials) { _ throws(SyscallError) in
            } make: { id throws(SyscallError) in
                SemaphoreSet(permissions: IPCPermissions(key: LinuxIPC.IPC_PRIVATE, id: id, credentials: task.credentials,
                                                         mode: 0o600), count: 2, now: 0)
            }
        }
        let outcome = try registry.perform([SemaphoreOperation(semaphore: 1, change: 3, flags: LinuxSemaphore.SEM_UNDO)],
                                           on: set, processID: task.processID, now: 0)
        guard case .done = outcome else { throw SyscallError.eagain }
        return (kernel, set)
    }

    @Test func adjustmentsThatFitTheirSetLoad() throws {
        let (kernel, set) = try Self.kernelWithASet()
        let bytes = try StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry)
        let loaded = try StateDecoder(registry: SentryStateTypes.registry).decode(bytes, as: Kernel.self)
        #expect(loaded.semaphores.adjustments.values.contains { $0[set.permissions.id] == [0, -3] })
    }

    @Test(arguments: [[Int32(-3)], [0, -3, 0]])
    func adjustmentsOfAnotherSizeAreRefusedByName(_ adjustments: [Int32]) throws {
        let (kernel, set) = try Self.kernelWithASet()
        let registry = kernel.semaphores
        registry.lock.withLock { _ in
            for process in registry.adjustments.keys { registry.adjustments[process]?[set.permissions.id] = adjustments }
        }
        let bytes = try StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry)
        #expect {
            _ = try StateDecoder(registry: SentryStateTypes.registry).decode(bytes, as: Kernel.self)
        } throws: { error in
            guard let error = error as? StateError, case .invalidValue = error.reason else { return false }
            return error.path.last == "undo"
        }
    }

    /// A negative ID, even one whose remainder names the set's slot (-32768
    /// names 0), is refused by name: IDs are never negative.
    @Test(arguments: [-LinuxIPC.SEQ_MULTIPLIER, Int32.min])
    func aNegativeIDIsRefused(_ id: Int32) throws {
        let (kernel, set) = try Self.kernelWithASet()
        kernel.semaphores.lock.withLock { _ in
            set.permissions.id = id
            kernel.semaphores.adjustments = [:]
        }
        let bytes = try StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry)
        #expect {
            _ = try StateDecoder(registry: SentryStateTypes.registry).decode(bytes, as: Kernel.self)
        } throws: { error in
            guard let error = error as? StateError, case .invalidValue = error.reason else { return false }
            return error.path.last == "id"
        }
    }
}
