import Relay

/// The relay's front page: live topics with watch and broadcast links.
enum IndexPage {
    static func render(topics: [TopicSummary], relayID: String) -> String {
        let rows = topics.map { topic -> String in
            let name = html(topic.name)
            let state = topic.live ? "<span class=\"live\">live</span>" : "idle"
            return """
                <tr><td><a href="/watch.html?topic=\(name)">\(name)</a></td><td>\(state)</td>\
                <td>\(topic.viewers)</td><td>\(topic.highWatermark)</td>\
                <td><a href="/broadcast.html?topic=\(name)">broadcast</a></td></tr>
                """
        }.joined(separator: "\n")
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>kvb relay \(html(relayID))</title>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <link rel="stylesheet" href="/css/kvb.css"></head>
            <body><main>
            <h1>kvb relay <code>\(html(relayID))</code></h1>
            <p>Live video through Kafka. Start a stream: <a href="/broadcast.html?topic=demo">broadcast to <code>demo</code></a>,
            or try <a href="/static/index.html">your camera replayed through Kafka</a>.</p>
            <form action="/watch.html"><label>Watch topic <input name="topic" value="demo" pattern="[A-Za-z0-9._-]+" required></label>
            <button>Watch</button></form>
            <table class="topics"><thead><tr><th>topic</th><th>state</th><th>viewers here</th><th>fragments</th><th></th></tr></thead>
            <tbody>
            \(rows.isEmpty ? "<tr><td colspan=5>No topics yet.</td></tr>" : rows)
            </tbody></table>
            </main></body></html>
            """
    }

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
