import OCI
import Sentry

/// The spec's `linux.seccomp` profile as the Sentry's filter: OCI checked the
/// fields (`Spec.Seccomp.parsed`); here names become x86_64 numbers, a name
/// this architecture lacks being ignored, as libseccomp and runc do. Every
/// process of the container gets the filter (init and `runsc exec`'s); a
/// restored task keeps the one saved with it.
extension Loader {
    static func seccompFilter(_ spec: Spec) throws(LoaderError) -> SeccompFilter? {
        guard let profile = spec.linux?.seccomp else { return nil }
        let parsed: Spec.Seccomp.Parsed
        do {
            parsed = try profile.parsed()
        } catch {
            throw LoaderError("the spec's seccomp profile cannot be enforced: \(error)")
        }
        var rules: [SeccompRule] = []
        for rule in parsed.rules {
            let action = seccompAction(rule.action)
            var conditions: [SeccompCondition] = []
            for condition in rule.conditions {
                // OCI checked the index; a condition dropped here would widen the rule.
                guard let converted = SeccompCondition(argument: condition.index, op: seccompOperator(condition.op),
                                                       value: condition.value, valueTwo: condition.valueTwo) else {
                    throw LoaderError("the spec's seccomp profile compares argument \(condition.index), past the last (5)")
                }
                conditions.append(converted)
            }
            for name in rule.names {
                guard let number = SyscallTable.number(of: name) else { continue }
                rules.append(SeccompRule(number: number, action: action, conditions: conditions))
            }
        }
        return SeccompFilter(defaultAction: seccompAction(parsed.defaultAction), rules: rules)
    }

    static func seccompAction(_ action: Spec.Seccomp.Action) -> SeccompAction {
        switch action {
        case .allow: .allow
        case .errno(let errno): .errno(errno)
        case .killThread: .killThread
        case .killProcess: .killProcess
        case .trap: .trap
        case .log: .log
        case .trace(let message): .trace(message)
        }
    }

    static func seccompOperator(_ op: Spec.Seccomp.Operator) -> SeccompCondition.Operator {
        switch op {
        case .notEqual: .notEqual
        case .lessThan: .lessThan
        case .lessOrEqual: .lessOrEqual
        case .equal: .equal
        case .greaterOrEqual: .greaterOrEqual
        case .greaterThan: .greaterThan
        case .maskedEqual: .maskedEqual
        }
    }
}
