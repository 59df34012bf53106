import CNcurses
import Glibc
import ConsoleUI

/// The real terminal, through ncursesw: paints a ``Screen`` and reads keys. Only this type
/// touches ncurses; everything it shows is laid out by ConsoleUI.
final class Terminal {
    private let window: UnsafeMutablePointer<WINDOW>
    private let colors: Bool

    /// Takes over the terminal (alternate screen, no echo, keypad, hidden cursor).
    init() {
        _ = kvb_setlocale_all()
        // Size from the terminal itself (and its resizes), not from LINES/COLUMNS a parent
        // process may have exported: ncurses would believe those forever.
        unsetenv("LINES")
        unsetenv("COLUMNS")
        // initscr exits the process itself if the terminal cannot be set up.
        window = initscr()
        _ = cbreak()
        _ = noecho()
        _ = keypad(window, true)
        _ = curs_set(0)
        wtimeout(window, 100)
        _ = set_escdelay(25)
        colors = has_colors()
        if colors {
            _ = start_color()
            _ = use_default_colors()
            for (pair, foreground, background) in Self.palette {
                _ = init_pair(pair, foreground, background)
            }
        }
    }

    /// Gives the terminal back as it was. Call once, on every way out.
    func restore() {
        _ = endwin()
    }

    var size: (width: Int, height: Int) {
        var y: Int32 = 0
        var x: Int32 = 0
        kvb_getmaxyx(window, &y, &x)
        return (Int(x), Int(y))
    }

    /// Paints the screen; ncurses sends only what changed.
    func draw(_ screen: Screen) {
        _ = werase(window)
        let (width, height) = size
        for (y, line) in screen.lines.enumerated() where y < height {
            var x = 0
            for span in line where x < width {
                let attributes = attributes(for: span.style)
                _ = wattrset(window, attributes)
                let text = String(span.text.prefix(width - x))
                // The bottom-right cell cannot be written without scrolling: leave it.
                let isLastCell = y == height - 1 && x + text.count >= width
                let shown = isLastCell ? String(text.dropLast()) : text
                _ = mvwaddstr(window, Int32(y), Int32(x), shown)
                x += text.count
            }
        }
        _ = wattrset(window, 0)
        _ = wrefresh(window)
    }

    /// Set when the terminal has gone away (its reads fail at once instead of waiting).
    private(set) var isGone = false
    private var instantFailures = 0

    /// The next key, or nil after ~100 ms without one.
    func readKey() -> Key? {
        let started = ContinuousClock.now
        let code = wgetch(window)
        if code == ERR {
            // A closed terminal makes every read fail at once: without this the loop would spin.
            instantFailures = ContinuousClock.now - started < .milliseconds(20) ? instantFailures + 1 : 0
            if instantFailures >= 50 { isGone = true }
            return nil
        }
        instantFailures = 0
        switch code {
        case KEY_UP: return .up
        case KEY_DOWN: return .down
        case KEY_LEFT: return .left
        case KEY_RIGHT: return .right
        case KEY_PPAGE: return .pageUp
        case KEY_NPAGE: return .pageDown
        case KEY_HOME: return .home
        case KEY_END: return .end
        case KEY_DC: return .delete
        case KEY_BTAB: return .backTab
        case KEY_RESIZE: return .resize
        case KEY_ENTER, 10, 13: return .enter
        case KEY_BACKSPACE, 127, 8: return .backspace
        case 9: return .tab
        case 27: return .escape
        case 32...126: return .character(Character(Unicode.Scalar(UInt8(code))))
        default: return nil
        }
    }

    private func attributes(for style: TextStyle) -> Int32 {
        let bold = Int32(kvb_attr_bold())
        let reverse = Int32(kvb_attr_reverse())
        let dim = Int32(kvb_attr_dim())
        guard colors else {
            switch style {
            case .title, .activeTab, .selected, .dialog, .error: return reverse
            case .header: return bold
            case .stale, .dim: return dim
            default: return 0
            }
        }
        let pair: Int16 = switch style {
        case .normal: 0
        case .title: 1
        case .tab: 2
        case .activeTab: 3
        case .header: 4
        case .selected: 5
        case .stale: 6
        case .paused: 7
        case .ok: 8
        case .error: 9
        case .dim: 6
        case .dialog: 10
        }
        var value = pair == 0 ? 0 : Int32(kvb_color_pair(Int32(pair)))
        if style == .header || style == .activeTab || style == .title { value |= bold }
        return value
    }

    /// (pair, foreground, background); -1 is the terminal's default.
    private static let palette: [(Int16, Int16, Int16)] = [
        (1, Int16(COLOR_BLACK), Int16(COLOR_CYAN)),
        (2, Int16(COLOR_CYAN), -1),
        (3, Int16(COLOR_BLACK), Int16(COLOR_WHITE)),
        (4, Int16(COLOR_YELLOW), -1),
        (5, Int16(COLOR_BLACK), Int16(COLOR_GREEN)),
        (6, Int16(COLOR_WHITE), -1),
        (7, Int16(COLOR_MAGENTA), -1),
        (8, Int16(COLOR_GREEN), -1),
        (9, Int16(COLOR_WHITE), Int16(COLOR_RED)),
        (10, Int16(COLOR_BLACK), Int16(COLOR_YELLOW)),
    ]
}
