import Tensor

/// TerraTorch's SegmentationHead: optional (3×3 conv + ReLU) layers, dropout (a no-op at
/// inference), then a 1×1 convolution to the classes. Weights under `head.head.{0,1,2}`.
struct SegmentationHead {
    let hidden: [ConvWeights]
    let classifier: ConvWeights

    init(binding b: WeightBinder, inChannels: Int, channelList: [Int], numClasses: Int) {
        var channels = inChannels
        var layers: [ConvWeights] = []
        for (k, out) in channelList.enumerated() {
            layers.append(ConvWeights(pytorch: b.tensor("head.head.0.\(k).0.weight", [out, channels, 3, 3]),
                                      bias: b.tensor("head.head.0.\(k).0.bias", [out]), inChannels: channels, outChannels: out, kernel: 3))
            channels = out
        }
        hidden = layers
        classifier = ConvWeights(pytorch: b.tensor("head.head.2.weight", [numClasses, channels, 1, 1]),
                                 bias: b.tensor("head.head.2.bias", [numClasses]), inChannels: channels, outChannels: numClasses, kernel: 1)
    }

    /// Per-pixel class scores (h × w × classes) from decoder features (h × w × C).
    func apply(_ x: UnsafePointer<Float>, height h: Int, width w: Int, into out: UnsafeMutablePointer<Float>, scratch: Scratch) {
        var current = x
        for (k, layer) in hidden.enumerated() {
            let next = scratch.buffer("head.hidden.\(k % 2)", h * w * layer.outChannels)
            layer.apply(current, height: h, width: w, into: next, relu: true, scratch: scratch)
            current = UnsafePointer(next)
        }
        classifier.apply(current, height: h, width: w, into: out, relu: false, scratch: scratch)
    }
}
