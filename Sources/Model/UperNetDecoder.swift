import Tensor

/// TerraTorch's UperNetDecoder on channels-last maps: scale modules (fpn1…fpn4), pyramid pooling
/// on the coarsest level, lateral 1×1 convs, top-down sums, 3×3 FPN convs, fused bottleneck.
final class UperNetDecoder {
    let config: DecoderConfig
    let inputChannels: [Int]
    /// Channels of the four levels after the scale modules.
    let levelChannels: [Int]
    let fpn1a, fpn1b, fpn2: ConvTranspose2x2Weights?
    let pyramid: [ConvWeights]
    let bottleneck: ConvWeights
    let laterals: [ConvWeights]
    let fpnConvs: [ConvWeights]
    let fpnBottleneck: ConvWeights

    init(binding b: WeightBinder, config c: DecoderConfig, inputChannels e: [Int]) {
        config = c
        inputChannels = e
        let ch = c.channels
        if c.scaleModules {
            let norm = b.batchNorm("decoder.fpn1.1", channels: e[0] / 2)
            fpn1a = ConvTranspose2x2Weights(
                pytorch: b.tensor("decoder.fpn1.0.weight", [e[0], e[0] / 2, 2, 2]), bias: b.tensor("decoder.fpn1.0.bias", [e[0] / 2]),
                inChannels: e[0], outChannels: e[0] / 2, scale: norm.scale, shift: norm.shift)
            fpn1b = ConvTranspose2x2Weights(
                pytorch: b.tensor("decoder.fpn1.3.weight", [e[0] / 2, e[0] / 4, 2, 2]), bias: b.tensor("decoder.fpn1.3.bias", [e[0] / 4]),
                inChannels: e[0] / 2, outChannels: e[0] / 4)
            fpn2 = ConvTranspose2x2Weights(
                pytorch: b.tensor("decoder.fpn2.0.weight", [e[1], e[1] / 2, 2, 2]), bias: b.tensor("decoder.fpn2.0.bias", [e[1] / 2]),
                inChannels: e[1], outChannels: e[1] / 2)
        } else {
            fpn1a = nil; fpn1b = nil; fpn2 = nil
        }
        let levels = c.scaleModules ? [e[0] / 4, e[1] / 2, e[2], e[3]] : e
        levelChannels = levels
        let top = levels[3]
        pyramid = c.poolScales.indices.map { b.convModule("decoder.psp_modules.\($0).1", in: top, out: ch, kernel: 1) }
        bottleneck = b.convModule("decoder.bottleneck", in: top + c.poolScales.count * ch, out: ch, kernel: 3)
        laterals = (0..<3).map { b.convModule("decoder.lateral_convs.\($0)", in: levels[$0], out: ch, kernel: 1) }
        fpnConvs = (0..<3).map { b.convModule("decoder.fpn_convs.\($0)", in: ch, out: ch, kernel: 3) }
        fpnBottleneck = b.convModule("decoder.fpn_bottleneck", in: 4 * ch, out: ch, kernel: 3)
    }

    /// Level sizes for a g×g token grid.
    func levelSizes(gridHeight h: Int, gridWidth w: Int) -> [(Int, Int)] {
        config.scaleModules ? [(4 * h, 4 * w), (2 * h, 2 * w), (h, w), (h / 2, w / 2)] : Array(repeating: (h, w), count: 4)
    }

    /// Decodes one image from its four neck maps (each gh × gw × E_i, channels-last) into
    /// `out` (size of level 0 × channels); returns level 0's size.
    func forward(
        _ features: [UnsafePointer<Float>], gridHeight gh: Int, gridWidth gw: Int,
        into out: UnsafeMutablePointer<Float>, scratch: Scratch, trace: ForwardTrace?
    ) -> (height: Int, width: Int) {
        let ch = config.channels, align = config.alignCorners
        let sizes = levelSizes(gridHeight: gh, gridWidth: gw)
        func pixels(_ level: Int) -> Int { sizes[level].0 * sizes[level].1 }

        // Scale modules.
        var levels: [UnsafePointer<Float>] = []
        if config.scaleModules, let fpn1a, let fpn1b, let fpn2 {
            let half = scratch.buffer("decoder.fpn1.half", 4 * gh * gw * fpn1a.outChannels)
            fpn1a.apply(features[0], height: gh, width: gw, into: half, scratch: scratch)
            VectorMath.gelu(half, count: 4 * gh * gw * fpn1a.outChannels)
            let level0 = scratch.buffer("decoder.level0", pixels(0) * levelChannels[0])
            fpn1b.apply(half, height: 2 * gh, width: 2 * gw, into: level0, scratch: scratch)
            let level1 = scratch.buffer("decoder.level1", pixels(1) * levelChannels[1])
            fpn2.apply(features[1], height: gh, width: gw, into: level1, scratch: scratch)
            let level3 = scratch.buffer("decoder.level3", pixels(3) * levelChannels[3])
            Pooling.maxPool2x2(features[3], height: gh, width: gw, channels: levelChannels[3], into: level3)
            levels = [UnsafePointer(level0), UnsafePointer(level1), features[2], UnsafePointer(level3)]
        } else {
            levels = features
        }
        if let trace {
            for (j, level) in levels.enumerated() {
                trace("decoder.scaled.\(j)", Array(UnsafeBufferPointer(start: level, count: pixels(j) * levelChannels[j])),
                      [1, sizes[j].0, sizes[j].1, levelChannels[j]])
            }
        }

        // Laterals 0…2 and the pyramid-pooled level 3.
        var lateral: [UnsafeMutablePointer<Float>] = (0..<3).map { j in
            let buffer = scratch.buffer("decoder.lateral.\(j)", pixels(j) * ch)
            laterals[j].apply(levels[j], height: sizes[j].0, width: sizes[j].1, into: buffer, relu: true, scratch: scratch)
            trace?("decoder.laterals.\(j)", Array(UnsafeBufferPointer(start: buffer, count: pixels(j) * ch)), [1, sizes[j].0, sizes[j].1, ch])
            return buffer
        }
        lateral.append(pyramidPooling(levels[3], height: sizes[3].0, width: sizes[3].1, scratch: scratch))
        trace?("decoder.psp", Array(UnsafeBufferPointer(start: lateral[3], count: pixels(3) * ch)), [1, sizes[3].0, sizes[3].1, ch])

        // Top-down: each level gains its coarser neighbour, upsampled.
        let upsampled = scratch.buffer("decoder.upsampled", pixels(0) * ch)
        for j in stride(from: 3, to: 0, by: -1) {
            Resampling.bilinear(lateral[j], inHeight: sizes[j].0, inWidth: sizes[j].1, channels: ch,
                                into: upsampled, outHeight: sizes[j - 1].0, outWidth: sizes[j - 1].1, alignCorners: align)
            VectorMath.add(upsampled, into: lateral[j - 1], count: pixels(j - 1) * ch)
        }

        // FPN convs, all brought to level 0's size side by side: [p0 | p1 | p2 | p3] (4C channels).
        let fused = scratch.buffer("decoder.fused", pixels(0) * 4 * ch)
        fpnConvs[0].apply(lateral[0], height: sizes[0].0, width: sizes[0].1, into: fused, yStride: 4 * ch, relu: true, scratch: scratch)
        let smoothed = scratch.buffer("decoder.smoothed", pixels(1) * ch)
        for j in 1...3 {
            var source = UnsafePointer(lateral[j])
            if j < 3 {
                fpnConvs[j].apply(lateral[j], height: sizes[j].0, width: sizes[j].1, into: smoothed, relu: true, scratch: scratch)
                source = UnsafePointer(smoothed)
            }
            Resampling.bilinear(source, inHeight: sizes[j].0, inWidth: sizes[j].1, channels: ch,
                                into: fused + j * ch, outHeight: sizes[0].0, outWidth: sizes[0].1, dstStride: 4 * ch, alignCorners: align)
        }
        fpnBottleneck.apply(fused, height: sizes[0].0, width: sizes[0].1, into: out, relu: true, scratch: scratch)
        trace?("decoder.output", Array(UnsafeBufferPointer(start: out, count: pixels(0) * ch)), [1, sizes[0].0, sizes[0].1, ch])
        return sizes[0]
    }

    /// PPM + bottleneck: [x | up(conv(pool_p(x))) for p in scales] → 3×3 ConvModule.
    private func pyramidPooling(_ x: UnsafePointer<Float>, height h: Int, width w: Int, scratch: Scratch) -> UnsafeMutablePointer<Float> {
        let ch = config.channels, top = levelChannels[3]
        let width = top + config.poolScales.count * ch
        let stacked = scratch.buffer("decoder.ppm.stacked", h * w * width)
        for p in 0..<(h * w) { (stacked + p * width).update(from: x + p * top, count: top) }
        for (j, scale) in config.poolScales.enumerated() {
            let pooledBuffer = scratch.buffer("decoder.ppm.pooled", scale * scale * top)
            let reducedBuffer = scratch.buffer("decoder.ppm.reduced", scale * scale * ch)
            Pooling.adaptiveAverage(x, height: h, width: w, channels: top, outputSize: scale, into: pooledBuffer)
            pyramid[j].apply(pooledBuffer, height: scale, width: scale, into: reducedBuffer, relu: true, scratch: scratch)
            Resampling.bilinear(reducedBuffer, inHeight: scale, inWidth: scale, channels: ch, into: stacked + top + j * ch,
                                outHeight: h, outWidth: w, dstStride: width, alignCorners: config.alignCorners)
        }
        let result = scratch.buffer("decoder.lateral.3", h * w * ch)
        bottleneck.apply(stacked, height: h, width: w, into: result, relu: true, scratch: scratch)
        return result
    }
}
