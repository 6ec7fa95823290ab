/// The job-control ioctls of a process's terminal (drivers/tty/tty_jobctrl.c):
/// its foreground process group, its session, becoming a session's
/// controlling terminal. termios and the window size go to the host terminal.
enum TerminalControl {
    static func ioctl(_ task: Task, _ file: FileDescription, _ terminal: HostTerminal, request: UInt32,
                      argument: UInt64) throws(SyscallError) -> Int64 {
        guard let group = task.threadGroup, let namespace = task.kernel?.pidNamespace else { throw .esrch }
        switch request {
        case DescriptorSyscalls.tiocgpgrp:
            // Only the caller's controlling terminal answers (tiocgpgrp).
            guard terminal.controls(group) else { throw .enotty }
            try task.copyOut(value: terminal.owner.foreground, to: argument)
        case DescriptorSyscalls.tiocgsid:
            guard terminal.controls(group) else { throw .enotty }
            try task.copyOut(value: terminal.owner.session, to: argument)
        case DescriptorSyscalls.tiocspgrp:
            do {
                try terminal.checkChange(task, signal: .terminalOutput)
            } catch .eio {
                throw .enotty
            }
            let processGroup = try task.copyIn(Int32.self, from: argument)
            guard processGroup >= 0 else { throw .einval }
            guard terminal.controls(group) else { throw .enotty }
            guard let member = ThreadGroup.processGroupExists(processGroup, in: namespace) else { throw .esrch }
            guard member.sessionID == group.sessionID else { throw .eperm }
            terminal.setForeground(processGroup)
        case DescriptorSyscalls.tiocsctty:
            // tiocsctty: a session leader takes a terminal no session has (or steals it, arg 1 with CAP_SYS_ADMIN).
            let leader = group.isSessionLeader
            if leader && terminal.controls(group) { return 0 }
            let admin = task.credentials.hasCapability(LinuxProcess.CAP_SYS_ADMIN)
            guard leader else { throw .eperm }
            if terminal.owner.session != 0 && !(argument == 1 && admin) { throw .eperm }
            guard file.isReadable || admin else { throw .eperm }
            terminal.becomeControllingTerminal(of: group)
        default:
            throw .enotty
        }
        return 0
    }
}
