import Foundation

/// A seeded synthetic landscape for scenes that have a ground truth: several land covers
/// (cropland, forest, bare soil, urban) in smooth patches, one or two meandering rivers and a
/// few lakes of varied turbidity, optional clouds. Every seed gives another landscape; the same
/// seed always the same one. Values are the six model bands in DN (reflectance × 10000).
struct SyntheticLandscape {
    /// What one pixel is: its six band values and its truth (`SceneFactory.Truth`; unknown under a cloud).
    struct Pixel {
        var values: [Float]
        var truth: UInt8
    }

    struct River { var horizontal: Bool; var base, amplitude, period, phase, halfWidth, turbidity: Double }
    struct Lake { var cx, cy, rx, ry, angle, turbidity: Double }

    /// Typical DN of the six bands (B02, B03, B04, B8A, B11, B12).
    static let covers: [[Float]] = [
        [600, 900, 600, 3600, 2000, 1000],    // cropland
        [350, 550, 350, 2700, 1300, 600],     // forest
        [1500, 1800, 2100, 2600, 3300, 2700], // bare soil
        [1300, 1350, 1450, 1900, 2200, 2000], // urban
    ]
    static let clearWater: [Float] = [700, 600, 400, 200, 100, 70]
    static let turbidWater: [Float] = [1000, 1150, 950, 550, 220, 150]
    static let cloud: [Float] = [5200, 5100, 5300, 5600, 4100, 3200]

    let width: Int, height: Int, seed: UInt64
    let cloudCover: Double
    var rivers: [River] = []
    var lakes: [Lake] = []

    init(width: Int, height: Int, seed: UInt64, cloudCover: Double) {
        self.width = width; self.height = height; self.seed = seed; self.cloudCover = cloudCover
        var state = seed &* 0x2545_F491_4F6C_DD1D | 1
        func draw() -> Double {
            state = SceneFactory.hash(state)
            return Double(state >> 11) / Double(1 << 53)
        }
        let w = Double(width), h = Double(height)
        for index in 0..<(1 + Int(draw() * 2)) {
            let horizontal = index == 0 ? draw() < 0.6 : !rivers[0].horizontal
            let across = horizontal ? h : w
            rivers.append(River(horizontal: horizontal, base: across * (0.25 + 0.5 * draw()), amplitude: across * (0.05 + 0.15 * draw()),
                                period: (horizontal ? w : h) * (0.5 + draw()), phase: draw() * 2 * .pi,
                                halfWidth: 8 + 30 * draw(), turbidity: draw()))
        }
        let scale = min(w, h)
        for _ in 0..<(2 + Int(draw() * 3)) {
            lakes.append(Lake(cx: w * draw(), cy: h * draw(), rx: scale * (0.04 + 0.1 * draw()), ry: scale * (0.03 + 0.08 * draw()),
                              angle: draw() * .pi, turbidity: draw()))
        }
    }

    /// Smooth noise in [0, 1): a hashed lattice every `cell` pixels, smoothstep-interpolated.
    func noise(_ x: Double, _ y: Double, cell: Double, salt: UInt64) -> Double {
        let fx = x / cell, fy = y / cell
        let ix = floor(fx), iy = floor(fy)
        func corner(_ cx: Double, _ cy: Double) -> Double {
            let h = SceneFactory.hash(UInt64(bitPattern: Int64(cx)) &* 0x9E37_79B9 ^ UInt64(bitPattern: Int64(cy)) &* 0x85EB_CA6B ^ seed &* 0xC2B2_AE35 ^ salt)
            return Double(h >> 11) / Double(1 << 53)
        }
        func smooth(_ t: Double) -> Double { t * t * (3 - 2 * t) }
        let tx = smooth(fx - ix), ty = smooth(fy - iy)
        let top = corner(ix, iy) * (1 - tx) + corner(ix + 1, iy) * tx
        let bottom = corner(ix, iy + 1) * (1 - tx) + corner(ix + 1, iy + 1) * tx
        return top * (1 - ty) + bottom * ty
    }

    /// Two octaves: patches with ragged edges.
    func fractal(_ x: Double, _ y: Double, cell: Double, salt: UInt64) -> Double {
        0.7 * noise(x, y, cell: cell, salt: salt) + 0.3 * noise(x, y, cell: cell / 3.7, salt: salt &+ 17)
    }

    /// How wet (x, y) is, 0…1 over soft banks of ≈ 3 px, and the water's turbidity there.
    func water(_ x: Double, _ y: Double) -> (wet: Double, turbidity: Double) {
        var wet = 0.0, turbidity = 0.0
        // Banks wobble so edges are not analytic curves.
        let wobble = (noise(x, y, cell: 23, salt: 5) - 0.5) * 6
        for river in rivers {
            let along = river.horizontal ? x : y, across = river.horizontal ? y : x
            let centre = river.base + river.amplitude * sin(along / river.period * 2 * .pi + river.phase)
            let w = min(1, max(0, (river.halfWidth + wobble - abs(across - centre)) / 3 + 0.5))
            if w > wet { wet = w; turbidity = river.turbidity }
        }
        for lake in lakes {
            let dx = x - lake.cx, dy = y - lake.cy
            let u = (dx * cos(lake.angle) + dy * sin(lake.angle)) / lake.rx
            let v = (-dx * sin(lake.angle) + dy * cos(lake.angle)) / lake.ry
            let radius = min(lake.rx, lake.ry)
            let inside = (1 - (u * u + v * v).squareRoot()) * radius + wobble * 1.5
            let w = min(1, max(0, inside / 3 + 0.5))
            if w > wet { wet = w; turbidity = lake.turbidity }
        }
        return (wet, turbidity)
    }

    /// `texture` in −0.5…0.5: the scene's per-pixel hash noise, shared with the bands the model does not use.
    func pixel(x: Int, y: Int, texture: Float) -> Pixel {
        let fx = Double(x), fy = Double(y)
        // Land cover: the cover whose noise field is highest.
        var best = 0, bestScore = -1.0
        for cover in 0..<Self.covers.count {
            let score = fractal(fx, fy, cell: 140, salt: UInt64(cover) &* 101 &+ 1) + (cover >= 2 ? -0.08 : 0)
            if score > bestScore { bestScore = score; best = cover }
        }
        let brightness = Float(0.88 + 0.24 * noise(fx, fy, cell: 31, salt: 77))
        let (wet, turbidity) = water(fx, fy)
        var alpha = 0.0
        if cloudCover > 0 {
            // Cloud where a coarse field passes a threshold that leaves roughly `cloudCover` covered
            // (the field is centred on 0.5), opaque within ≈ 6 % of the field's range.
            let field = fractal(fx, fy, cell: 90, salt: 999)
            alpha = min(1, max(0, (field - (0.5 + (0.5 - cloudCover) * 0.8)) / 0.06))
        }
        let values = (0..<6).map { b -> Float in
            let land = Self.covers[best][b] * brightness
            let waterValue = Self.clearWater[b] * Float(1 - turbidity) + Self.turbidWater[b] * Float(turbidity)
            let surface = Float(wet) * waterValue + Float(1 - wet) * land + texture * 60
            return max(1, (Float(alpha) * Self.cloud[b] + Float(1 - alpha) * surface).rounded())
        }
        let truth = alpha > 0.2 ? SceneFactory.Truth.unknown : wet >= 0.5 ? SceneFactory.Truth.water : SceneFactory.Truth.land
        return Pixel(values: values, truth: truth)
    }
}
