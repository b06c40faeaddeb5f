/// Multiply-add work of one forward pass, counted as 2 FLOPs per multiply-add of every GEMM and
/// convolution (elementwise work is not counted). For GFLOP/s figures in benchmarks.
public enum ModelFLOPs {
    public static func forward(_ config: ModelConfig, height: Int, width: Int) -> Double {
        let c = config.encoder, e = Double(c.embedDim)
        let gh = height / c.patchSize, gw = width / c.patchSize
        let patches = Double(gh * gw), tokens = patches + 1
        var flops = 2 * patches * Double(c.inChannels * c.patchSize * c.patchSize) * e
        let block = 2 * tokens * e * 3 * e + 2 * 2 * tokens * tokens * e + 2 * tokens * e * e + 2 * 2 * tokens * e * Double(c.mlpHidden)
        flops += Double(c.depth) * block
        // Decoder (scale modules assumed as in the published model).
        let d = config.decoder, ch = Double(d.channels)
        let g = Double(gh * gw)
        let levels = [16 * g, 4 * g, g, g / 4]
        let levelChannels = d.scaleModules ? [e / 4, e / 2, e, e] : [e, e, e, e]
        if d.scaleModules {
            flops += 2 * g * e * (e / 2) * 4 + 2 * 4 * g * (e / 2) * (e / 4) * 4 + 2 * g * e * (e / 2) * 4
        }
        for (scale) in d.poolScales { flops += 2 * Double(scale * scale) * levelChannels[3] * ch }
        flops += 2 * levels[3] * (levelChannels[3] + Double(d.poolScales.count) * ch) * ch * 9
        for j in 0..<3 { flops += 2 * levels[j] * levelChannels[j] * ch + 2 * levels[j] * ch * ch * 9 }
        flops += 2 * levels[0] * 4 * ch * ch * 9
        flops += 2 * levels[0] * ch * Double(config.numClasses)
        return flops
    }
}
