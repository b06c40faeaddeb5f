import Foundation
import Pipeline

/// The body of `POST /pooling` with the terratorch_segmentation plugin's `data`, as vLLM clients
/// send it. Unknown fields (`image_format`, `softmax`, `priority`, …) are accepted and ignored.
public struct PoolingRequest: Equatable, Sendable {
    public enum InputFormat: String, Sendable { case url, path, b64_json }
    public enum OutputFormat: String, Sendable { case path, b64_json }

    public var model: String?
    public var inputFormat: InputFormat
    /// URL, path, or base64 GeoTIFF.
    public var input: String
    public var outputFormat: OutputFormat
    /// 0-based band indices; nil takes [0…5].
    public var indices: [Int]?
    /// Directory for a `path` output (inside the server's output directory).
    public var outPath: String?
    /// `data.tiling`: overlap or vllm; nil takes the server's `--tiling`.
    public var tiling: TilingMode?

    /// Parses and validates a request body; every problem is a 400 naming the field.
    public static func parse(_ body: Data) throws -> PoolingRequest {
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: body)
        } catch {
            throw APIError.badRequest("the request body is not valid JSON")
        }
        guard let top = root as? [String: Any] else { throw APIError.badRequest("the request body must be a JSON object") }
        let model: String?
        switch top["model"] {
        case nil, is NSNull: model = nil
        case let name as String: model = name
        default: throw APIError.badRequest("`model` must be a string")
        }
        guard let data = top["data"] else { throw APIError.badRequest("missing field `data` (the terratorch_segmentation request)") }
        guard let fields = data as? [String: Any] else {
            throw APIError.badRequest("`data` must be an object with `data`, `data_format` and `out_data_format`")
        }
        guard let rawFormat = fields["data_format"] as? String else { throw APIError.badRequest("missing string field `data.data_format`") }
        guard let inputFormat = InputFormat(rawValue: rawFormat) else {
            throw APIError.badRequest("`data.data_format` must be one of url, path, b64_json; got \(rawFormat)")
        }
        guard let input = fields["data"] as? String, !input.isEmpty else { throw APIError.badRequest("missing string field `data.data`") }
        guard let rawOutput = fields["out_data_format"] as? String else { throw APIError.badRequest("missing string field `data.out_data_format`") }
        guard let outputFormat = OutputFormat(rawValue: rawOutput) else {
            throw APIError.badRequest("`data.out_data_format` must be path or b64_json; got \(rawOutput)")
        }
        var indices: [Int]?
        switch fields["indices"] {
        case nil, is NSNull: indices = nil
        case let list as [Any]:
            let values = list.compactMap { item -> Int? in
                guard let number = item as? NSNumber, String(cString: number.objCType) != "c", number.doubleValue == number.doubleValue.rounded() else { return nil }
                return number.intValue
            }
            guard values.count == list.count, values.allSatisfy({ $0 >= 0 }) else {
                throw APIError.badRequest("`data.indices` must be a list of band indices ≥ 0")
            }
            indices = values.isEmpty ? nil : values
        default: throw APIError.badRequest("`data.indices` must be a list of band indices")
        }
        var outPath: String?
        switch fields["out_path"] {
        case nil, is NSNull: outPath = nil
        case let path as String: outPath = path.isEmpty ? nil : path
        default: throw APIError.badRequest("`data.out_path` must be a string")
        }
        var tiling: TilingMode?
        switch fields["tiling"] {
        case nil, is NSNull: tiling = nil
        case let name as String:
            guard let mode = TilingMode(rawValue: name) else { throw APIError.badRequest("`data.tiling` must be overlap or vllm; got \(name)") }
            tiling = mode
        default: throw APIError.badRequest("`data.tiling` must be a string (overlap or vllm)")
        }
        return PoolingRequest(model: model, inputFormat: inputFormat, input: input, outputFormat: outputFormat,
                              indices: indices, outPath: outPath, tiling: tiling)
    }
}

/// The 200 body: `{"request_id": …, "created_at": …, "data": {"data_format", "data", "request_id"}}`.
public struct PoolingResponse: Sendable {
    public var requestID: String
    public var createdAt: Int
    public var outputFormat: PoolingRequest.OutputFormat
    /// Absolute path or base64 GeoTIFF.
    public var output: String

    public init(requestID: String, createdAt: Int, outputFormat: PoolingRequest.OutputFormat, output: String) {
        self.requestID = requestID; self.createdAt = createdAt; self.outputFormat = outputFormat; self.output = output
    }

    public var json: Data {
        let body: [String: Any] = [
            "request_id": requestID,
            "created_at": createdAt,
            "data": ["data_format": outputFormat.rawValue, "data": output, "request_id": requestID] as [String: Any],
        ]
        return (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }
}

/// Request ids become file names (`<output dir>/<id>.tiff`): a client's `X-Request-Id` must not
/// smuggle a path in.
public func poolingRequestID(header: String?) throws -> String {
    guard let header, !header.isEmpty else { return "pool-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "") }
    let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_."))
    guard header.count <= 128, header.unicodeScalars.allSatisfy({ allowed.contains($0) && $0.isASCII }), !header.hasPrefix(".") else {
        throw APIError.badRequest("X-Request-Id may hold up to 128 letters, digits, '-', '_' and '.'")
    }
    return "pool-" + header
}
