import ControlPlane
import Trust

/// Decides which records from the control topic a relay acts on: only commands signed with the
/// operator key, fresh, and seen for the first time. Everything else is refused and counted by
/// reason, for the status document. Pure logic: the agent reads Kafka and applies commands.
struct CommandGate: Sendable {
    enum Verdict: Sendable, Equatable {
        case apply(ControlCommand)
        /// Refused; the reason is the counter's label.
        case refuse(reason: String)
        /// Not a command (an acknowledgement): nothing to do.
        case ignore
    }

    private(set) var intake: CommandIntake
    private var replay: ReplayGuard

    init(operatorKey: Bool, replay: ReplayGuard = ReplayGuard()) {
        intake = CommandIntake(operatorKey: operatorKey)
        self.replay = replay
    }

    /// `decoded` is the record as decoded (nil when it is not a control document), `signature`
    /// what its `kvb-sig` header proved.
    mutating func admit(_ decoded: ControlMessage?, signature: SignatureCheck, nowMilliseconds now: Int64) -> Verdict {
        guard let decoded else { return refuse("unreadable") }
        guard case .command(let command) = decoded else { return .ignore }
        guard intake.operatorKey else { return refuse("no_operator_key") }
        switch signature {
        case .unsigned: return refuse("unsigned")
        case .badSignature: return refuse("bad_signature")
        case .valid: break
        }
        let admission = replay.admit(id: command.id, issuedAtMilliseconds: command.issuedAtMilliseconds, nowMilliseconds: now)
        guard admission == .accepted else { return refuse(admission.rawValue) }
        return .apply(command)
    }

    /// A command admitted here was for this relay and has been applied.
    mutating func noteApplied() {
        intake.applied &+= 1
    }

    private mutating func refuse(_ reason: String) -> Verdict {
        intake.rejected[reason, default: 0] &+= 1
        return .refuse(reason: reason)
    }
}
