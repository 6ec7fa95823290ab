import CShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Real pthreads for work that blocks or runs long (compression workers, a
/// restore's page loader, the control server, signal forwarding): never
/// Swift concurrency's cooperative pool, which such work would starve.
public enum HostThread {
    /// Starts a pthread running `body`: joinable (the caller joins the
    /// returned thread) or detached. Throws the errno pthread_create gave.
    @discardableResult
    public static func start(detached: Bool = false, _ body: @escaping () -> Void) throws(HostThreadError) -> pthread_t {
        let box = Unmanaged.passRetained(Body(body))
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        if detached { pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED)) }
        // Not its creator's CPU: a Sentry thread driving a stub is pinned.
        _ = cshim_thread_attributes_any_cpu(&attributes)
        var thread = pthread_t()
        let result = pthread_create(&thread, &attributes, { argument in
            guard let argument else { return nil }
            Unmanaged<Body>.fromOpaque(argument).takeRetainedValue().run()
            return nil
        }, box.toOpaque())
        guard result == 0 else {
            box.release()
            throw HostThreadError(errno: result)
        }
        return thread
    }

    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }
}

/// pthread_create refused (EAGAIN: too many threads, or no memory).
public struct HostThreadError: Error, Sendable, CustomStringConvertible {
    public let errno: Int32
    public var description: String { "cannot start a thread: \(String(cString: strerror(errno)))" }
}
