import Tensor

/// Loading of TerraTorch's ConvModule (Conv2d without bias → BatchNorm2d → ReLU), BatchNorm folded.
extension WeightBinder {
    /// BatchNorm2d at `prefix` as per-channel (scale, shift): y = x·scale + shift.
    func batchNorm(_ prefix: String, channels: Int, eps: Float = 1e-5) -> (scale: [Float], shift: [Float]) {
        let gamma = array("\(prefix).weight", [channels]), beta = array("\(prefix).bias", [channels])
        let mean = array("\(prefix).running_mean", [channels]), variance = array("\(prefix).running_var", [channels])
        let scale = (0..<channels).map { gamma[$0] / (variance[$0] + eps).squareRoot() }
        let shift = (0..<channels).map { beta[$0] - mean[$0] * scale[$0] }
        return (scale, shift)
    }

    /// A ConvModule at `prefix` (`.conv`, `.norm`) with the norm folded into the convolution.
    func convModule(_ prefix: String, in inChannels: Int, out outChannels: Int, kernel: Int) -> ConvWeights {
        let norm = batchNorm("\(prefix).norm", channels: outChannels)
        return ConvWeights(
            pytorch: tensor("\(prefix).conv.weight", [outChannels, inChannels, kernel, kernel]), bias: nil,
            inChannels: inChannels, outChannels: outChannels, kernel: kernel, scale: norm.scale, shift: norm.shift)
    }
}
