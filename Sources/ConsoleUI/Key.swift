/// A key press, decoded from the terminal.
public enum Key: Equatable, Sendable {
    case character(Character)
    case up, down, left, right, pageUp, pageDown, home, end
    case enter, escape, tab, backTab, backspace
    /// The Delete key (kicks, like `x`).
    case delete
    /// The terminal changed size.
    case resize
}
