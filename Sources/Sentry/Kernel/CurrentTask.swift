import Glibc

/// Linux's `current`: the task whose dedicated host thread is calling. What
/// Linux decides by the calling task rather than by an object's owner (a
/// signalfd reads the signals of the task that reads it) asks here. Kept in
/// a pthread key's value, unretained: the thread's closure holds the task.
extension Task {
    private static let currentKey: pthread_key_t = {
        var key = pthread_key_t()
        _ = pthread_key_create(&key, nil)
        return key
    }()

    /// The task this host thread runs; nil on a thread of no task (the
    /// timer thread, the host poller, a restore's loader).
    static var current: Task? {
        guard let value = pthread_getspecific(currentKey) else { return nil }
        return Unmanaged<Task>.fromOpaque(value).takeUnretainedValue()
    }

    /// Runs `body` (the task's whole life on its thread) as `task`.
    static func runAsCurrent(_ task: Task, _ body: () -> Void) {
        _ = pthread_setspecific(currentKey, Unmanaged.passUnretained(task).toOpaque())
        defer { _ = pthread_setspecific(currentKey, nil) }
        body()
    }
}
