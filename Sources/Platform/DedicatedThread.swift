import CShim
import Glibc

/// A real pthread for driving stub threads. ptrace binds a tracee to one
/// host thread, so Sentry work that calls into `Context` or `AddressSpace`
/// must run on a thread of its own, never on Swift concurrency's pool.
public final class DedicatedThread: Sendable {
    private let handle: pthread_t

    /// Starts `body` on a new pthread named `name` (first 15 bytes). A
    /// `detached` thread cannot be joined: its resources go when it ends.
    public init(name: String, detached: Bool = false, _ body: @escaping @Sendable () -> Void) throws(PlatformError) {
        let box = Unmanaged.passRetained(Body(name: name, body)).toOpaque()
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        if detached { pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED)) }
        let result = pthread_create(&thread, &attributes, { raw in
            guard let raw else { return nil }
            let body = Unmanaged<Body>.fromOpaque(raw).takeRetainedValue()
            body.name.withCString { cshim_name_current_thread($0) }
            body.run()
            return nil
        }, box)
        if result != 0 {
            Unmanaged<Body>.fromOpaque(box).release()
            throw PlatformError(.startThread, errno: result)
        }
        handle = thread
    }

    /// Waits for the thread to finish. Call once, or `detach` instead.
    public func join() {
        _ = pthread_join(handle, nil)
    }

    /// Lets the thread's resources go when it finishes, for a thread no one
    /// waits for. Call once, instead of `join`.
    public func detach() {
        _ = pthread_detach(handle)
    }

    private final class Body {
        let name: String
        let run: @Sendable () -> Void
        init(name: String, _ run: @escaping @Sendable () -> Void) {
            self.name = name
            self.run = run
        }
    }
}
