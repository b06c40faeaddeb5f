import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus
import Shared

/// The HTTP face of `serve`: vLLM's routes on Hummingbird, each a thin adapter to the framework-
/// free `PoolingService` (Shared/Serving), which holds the behaviour and its tests.
struct HTTPServer {
    let service: PoolingService
    let modelRoot: String
    let registry: PrometheusCollectorRegistry
    let maxBodyBytes: Int
    let startedAt = Int(Date().timeIntervalSince1970)

    /// Routes and methods, as vLLM's launcher lists them at start-up.
    static let routes: [(String, String)] = [
        ("/health", "GET"), ("/v1/models", "GET"), ("/version", "GET"), ("/metrics", "GET"),
        ("/pooling", "POST"), ("/invocations", "POST"),
    ]

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/health") { _, _ in Response(status: .ok) }
        router.get("/version") { _, _ in json(["version": projectVersion]) }
        router.get("/v1/models") { _, _ in json(modelList()) }
        router.get("/metrics") { _, _ in
            let text = registry.emitToString()
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        let pooling: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            var request = request
            let body: ByteBuffer
            do {
                body = try await request.collectBody(upTo: maxBodyBytes)
            } catch {
                return answer(HTTPAnswer(status: 413, body: APIError.tooLarge("the request body is larger than \(maxBodyBytes) bytes").json,
                                         headers: [("Content-Type", "application/json")]))
            }
            let header = request.headers[HTTPField.Name("X-Request-Id")!]
            return answer(await service.handle(body: Data(buffer: body), requestIDHeader: header))
        }
        router.post("/pooling", use: pooling)
        router.post("/invocations", use: pooling)
        return router
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
