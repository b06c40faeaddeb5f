import Foundation

/// Finding the files of a model directory.
public enum ModelDirectory {
    static let torchExtensions = ["pt", "pth", "ckpt", "bin"]

    /// Whether the directory's weights were made by `ModelFactory` (safetensors metadata
    /// `weights: random`): such a model runs, but its masks mean nothing.
    public static func hasRandomWeights(_ directory: String) -> Bool {
        guard let path = try? weightsFile(in: directory), path.hasSuffix(".safetensors"),
              let reader = try? SafetensorsReader(path: path) else { return false }
        return reader.metadata["weights"] == "random"
    }

    /// The weights file: `model.safetensors`, else the only `*.safetensors`, else the only
    /// PyTorch checkpoint (`*.pt`, `*.pth`, `*.ckpt`, `*.bin`).
    public static func weightsFile(in directory: String) throws -> String {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw ModelConfigError("\(directory): not a readable directory")
        }
        if names.contains("model.safetensors") { return directory + "/model.safetensors" }
        let safetensors = names.filter { $0.hasSuffix(".safetensors") }.sorted()
        if safetensors.count == 1 { return directory + "/" + safetensors[0] }
        if safetensors.count > 1 {
            throw ModelConfigError("\(directory): several safetensors files (\(safetensors.joined(separator: ", "))); name the one to use model.safetensors")
        }
        let torch = names.filter { torchExtensions.contains(URL(fileURLWithPath: $0).pathExtension) }.sorted()
        if torch.count == 1 { return directory + "/" + torch[0] }
        if torch.count > 1 {
            throw ModelConfigError("\(directory): several checkpoints (\(torch.joined(separator: ", "))); keep one")
        }
        throw ModelConfigError("\(directory): no weights (*.safetensors, *.pt, *.pth, *.ckpt)")
    }
}
