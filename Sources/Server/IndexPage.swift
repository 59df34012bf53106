import Relay

/// The relay's front page: a wall of the fleet's live topics, the newest sessions Kafka holds
/// (filled in by the script from `/api/recordings`), and the other topics with links.
enum IndexPage {
    /// The page as served: live topics as tiles (the script turns each into a muted live
    /// preview and keeps the wall current from `/api/topics`), then every other topic.
    /// `listsRecordings`: false where watch tokens are on (each topic needs its own token, so the
    /// list across topics is refused; the page says so instead of asking for it).
    static func render(topics: [TopicSummary], relayID: String, listsRecordings: Bool = true) -> String {
        let live = topics.filter(\.live)
        let tiles = live.map { topic -> String in
            let name = html(topic.name)
            return """
                <a class="tile" data-topic="\(name)" href="/watch.html?topic=\(name)"><div class="tile-picture"></div>\
                <div class="tile-caption"><span class="live-dot">live</span> <code>\(name)</code>\
                <span class="tile-viewers">\(topic.viewersInFleet) watching</span></div></a>
                """
        }.joined(separator: "\n")
        let rows = topics.filter { !$0.live }.map { topic -> String in
            let name = html(topic.name)
            return """
                <tr><td><a href="/watch.html?topic=\(name)">\(name)</a></td><td>idle</td>\
                <td>\(topic.viewersInFleet)</td><td>\(topic.highWatermark)</td>\
                <td><a href="/broadcast.html?topic=\(name)">broadcast</a> · <a href="/recordings.html?topic=\(name)">recordings</a></td></tr>
                """
        }.joined(separator: "\n")
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>kvb relay \(html(relayID))</title>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <link rel="stylesheet" href="/css/kvb.css"></head>
            <body><main>
            <header><a class="brand" href="/">kvb</a><h1>Live now <span class="muted">on every relay sharing this Kafka cluster</span></h1></header>
            <p>Live video through Kafka. Start a stream: <a href="/broadcast.html?topic=demo">broadcast to <code>demo</code></a>
            (or <a href="/broadcast.html?topic=clock&amp;source=clock">the clock test pattern</a>, which lets viewers measure glass-to-glass delay),
            or try <a href="/static/index.html">your camera replayed through Kafka</a>. This is relay <code>\(html(relayID))</code>.</p>
            <form action="/watch.html" class="topic-form"><label>Watch topic <input name="topic" value="demo" pattern="[A-Za-z0-9._-]+" required></label>
            <button>Watch</button></form>
            <section id="wall" class="wall" aria-live="polite">
            \(tiles)
            </section>
            <p id="wall-empty" class="muted"\(live.isEmpty ? "" : " hidden")>Nothing is live right now. Streams appear here as they start.</p>
            <h2>Recorded in Kafka</h2>
            \(listsRecordings ? recordingsSection : tokensNote)
            <h2>Other topics</h2>
            <table class="topics"><thead><tr><th>topic</th><th>state</th><th>viewers</th><th>fragments</th><th></th></tr></thead>
            <tbody id="idle-topics">
            \(rows.isEmpty ? "<tr><td colspan=5>None.</td></tr>" : rows)
            </tbody></table>
            </main>
            <script type="module" src="/js/wall.js"></script>
            </body></html>
            """
    }

    /// Filled in by the script from `/api/recordings`.
    static let recordingsSection = """
        <p id="recordings-note" class="muted" role="status">Reading what Kafka holds…</p>
        <table class="topics recordings" id="recordings-table" hidden><thead><tr><th>started</th><th>topic</th>\
        <th>length</th><th>size</th><th>relay</th><th>state</th><th></th></tr></thead>
        <tbody id="recordings"></tbody></table>
        """

    static let tokensNote = """
        <p id="recordings-note" class="muted">This relay needs a watch token for each topic, so it lists no \
        recordings here: a topic's recordings page, opened with its token (<code>recordings.html?topic=T&amp;token=…</code>), lists its own.</p>
        """

    static func html(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
