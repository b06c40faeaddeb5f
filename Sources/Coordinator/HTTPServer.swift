import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTPTypes
import Prometheus
import Serving

/// The HTTP face of `serve`: vLLM's routes on Hummingbird, each a thin adapter to the framework-
/// free `PoolingService` (the Serving target), which holds the behaviour and its tests.
struct HTTPServer {
    let service: PoolingService
    let modelRoot: String
    let registry: PrometheusCollectorRegistry
    let maxBodyBytes: Int
    /// Seconds a client has to send a whole request body (a trickled body is cut off with 408).
    let bodyTimeout: Double
    let startedAt = Int(Date().timeIntervalSince1970)

    /// Routes and methods, as vLLM's launcher lists them at start-up.
    static let routes: [(String, String)] = [
        ("/health", "GET"), ("/v1/models", "GET"), ("/version", "GET"), ("/metrics", "GET"),
        ("/pooling", "POST"), ("/invocations", "POST"),
    ]

    func router() -> Router<ServeContext> {
        let router = Router(context: ServeContext.self)
        router.get("/health") { _, _ in Response(status: .ok) }
        router.get("/version") { _, _ in json(["version": projectVersion]) }
        router.get("/v1/models") { _, _ in json(modelList()) }
        router.get("/metrics") { _, _ in
            let text = registry.emitToString()
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        let pooling: @Sendable (Request, ServeContext) async throws -> Response = { request, context in
            let body: ByteBuffer
            do {
                body = try await Self.collect(request, upTo: maxBodyBytes, within: bodyTimeout)
            } catch let error as APIError {
                return answer(HTTPAnswer(status: error.status, body: error.json, headers: error.headers + [("Connection", "close")]))
            }
            let header = request.headers[HTTPField.Name("X-Request-Id")!]
            // A client that goes away cancels its request: the job stops and leaves nothing behind.
            let work = Task { await service.handle(body: Data(buffer: body), requestIDHeader: header) }
            context.channel.closeFuture.whenComplete { _ in work.cancel() }
            return answer(await withTaskCancellationHandler { await work.value } onCancel: { work.cancel() })
        }
        router.post("/pooling", use: pooling)
        router.post("/invocations", use: pooling)
        return router
    }

    /// The request body, at most `limit` bytes (else 413), all of it within `seconds` (else 408).
    static func collect(_ request: Request, upTo limit: Int, within seconds: Double) async throws -> ByteBuffer {
        try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask {
                var request = request
                do { return try await request.collectBody(upTo: limit) } catch is CancellationError { return nil } catch {
                    throw APIError.tooLarge("the request body is larger than \(limit) bytes")
                }
            }
            group.addTask {
                try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                throw APIError(status: 408, type: "RequestTimeoutError", "the request body did not arrive within \(Int(seconds)) s")
            }
            defer { group.cancelAll() }
            while let next = try await group.next() {
                if let body = next { return body }
            }
            throw CancellationError()
        }
    }

    /// vLLM's ModelList for the one served model.
    func modelList() -> [String: Any] {
        let card: [String: Any] = [
            "id": service.servedModelName, "object": "model", "created": startedAt, "owned_by": "vllm",
            "root": modelRoot, "parent": NSNull(), "max_model_len": NSNull(),
            "permission": [[
                "id": "modelperm-prithvi", "object": "model_permission", "created": startedAt, "allow_create_engine": false,
                "allow_sampling": false, "allow_logprobs": false, "allow_search_indices": false, "allow_view": true,
                "allow_fine_tuning": false, "organization": "*", "group": NSNull(), "is_blocking": false,
            ] as [String: Any]],
        ]
        return ["object": "list", "data": [card]]
    }
}

/// The version `/version` reports.
let projectVersion = "0.5.0"

private func json(_ object: [String: Any]) -> Response {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

private func answer(_ answer: HTTPAnswer) -> Response {
    var headers = HTTPFields()
    for (name, value) in answer.headers {
        if let field = HTTPField.Name(name) { headers[field] = value }
    }
    return Response(status: HTTPResponse.Status(code: answer.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
}

/// Hummingbird's basic context plus the connection, so a request can tell when its client has gone.
struct ServeContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel
    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Guards each connection: at most `limit` connections at once (the next ones get 503 and are
/// closed, so a crowd of idle or slow clients cannot use up the process's file descriptors, and
/// /health answers again once the idle timeout has closed them); and a client that hangs up is
/// gone. Hummingbird allows half-closed connections, so a client's FIN would otherwise go unseen
/// until its answer was written: closing the connection then fires its close future, which cancels
/// the request's job (as uvicorn does for vLLM).
final class ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    /// Connections open now, shared by every connection's limiter.
    final class Count: Sendable {
        let limit: Int
        private let open = NIOLockedValueBox(0)
        init(limit: Int) { self.limit = limit }
        func enter() -> Bool { open.withLockedValue { if $0 >= limit { return false }; $0 += 1; return true } }
        func leave() { open.withLockedValue { $0 -= 1 } }
        var current: Int { open.withLockedValue { $0 } }
    }

    private let count: Count
    private var admitted = false
    private var answered = false

    init(count: Count) { self.count = count }

    func handlerAdded(context: ChannelHandlerContext) { admitted = count.enter() }
    func handlerRemoved(context: ChannelHandlerContext) { if admitted { count.leave(); admitted = false } }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !admitted else { context.fireChannelRead(data); return }
        guard case .head = unwrapInboundIn(data), !answered else { return }
        answered = true
        let error = APIError.unavailable("the server has \(count.limit) connections open (--max-connections); try again later", retryAfter: 1)
        var headers: HTTPFields = [.contentType: "application/json", .connection: "close", .contentLength: String(error.json.count)]
        headers[HTTPField.Name("Retry-After")!] = "1"
        context.write(wrapOutboundOut(.head(HTTPResponse(status: .serviceUnavailable, headerFields: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(ByteBuffer(bytes: error.json))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
