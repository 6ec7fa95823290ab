import Dispatch
import OCI
import State

/// The sandbox's answer to `runsc checkpoint`: only a running or paused
/// container can be saved, into the image directory's parent the client
/// opened and sent with the request (the sandbox's root holds no host path
/// but its own: Confinement); without `leaveRunning` it is stopped once the
/// image is complete (its exit is reported as a SIGKILL, as `runc
/// checkpoint` does), with it a paused one stays paused.
extension Sandbox {
    func checkpoint(_ request: CheckpointRequest, parentDirectory: Int32?) -> ControlResponse {
        let current = status.withLock { $0.container.status }
        guard current == .running || current == .paused else {
            return .failure(ControlFailure(.invalidState, "cannot checkpoint a container that is \(current.rawValue)"))
        }
        guard let compression = Compression(rawValue: request.compression) else {
            return .failure(ControlFailure(.badRequest,
                                           "unknown compression \"\(request.compression)\" (none, lz4 or zstd)"))
        }
        guard request.imagePath.hasPrefix("/") else {
            return .failure(ControlFailure(.badRequest, "the image path \(request.imagePath) is not absolute"))
        }
        guard let parentDirectory else {
            return .failure(ControlFailure(.badRequest, "the checkpoint request carries no descriptor of the image's directory"))
        }
        do {
            let summary = try loader.checkpoint(to: request.imagePath, in: parentDirectory, compression: compression,
                                                leaveRunning: request.leaveRunning)
            if !request.leaveRunning {
                var timer = PhaseTimer()
                waitUntilStopped()
                timer.mark("stop")
                logger.debug("checkpoint: \(timer.description)")
            }
            return .checkpointed(summary)
        } catch {
            return .failure(ControlFailure(.failed, error.description))
        }
    }

    /// The answer comes once the container is stopped, so a `delete` or
    /// `state` right after `checkpoint` sees it stopped (freeing a large
    /// address space takes a moment). Bounded like `shutdown`.
    private func waitUntilStopped() {
        let gate = DispatchSemaphore(value: 0)
        let pending = status.withLock { state -> Bool in
            if state.exit != nil { return false }
            state.waiters.append(gate)
            return true
        }
        if pending && gate.wait(timeout: .now() + Sandbox.shutdownGrace) == .timedOut {
            logger.warning("the container did not stop within \(Sandbox.shutdownGrace) of its checkpoint")
        }
    }
}
