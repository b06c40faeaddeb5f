import ArgumentParser
import Foundation
import Geo
import Logging
import Support

struct CreateSceneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-scene",
        abstract: "Write a synthetic Sentinel-2-like GeoTIFF (and its ground truth) for demos and tests.",
        discussion: """
        Int16 reflectance (DN) in UTM 30N, nodata 0, written in strips (any size fits in memory).
        --landscape river (default): one river across textured land. --landscape varied: land
        covers, rivers and lakes drawn from --seed, with --clouds. --truth writes the water as a
        uint8 GeoTIFF on the same grid (water 2, land 1, nodata 0 outside the swath and under
        clouds), which `coordinator score` compares a mask with.

          coordinator create-scene demo/scene.tif --width 1000 --height 700
          coordinator create-scene held-out.tif --landscape varied --seed 7 --clouds 0.1 --truth held-out-truth.tif
        """
    )

    @Argument(help: "GeoTIFF to write.")
    var path: String

    @Option(help: "Width in pixels.")
    var width: Int = 1000

    @Option(help: "Height in pixels.")
    var height: Int = 700

    @Option(help: "6 (model bands) or 13 (a full L1C stack; the model bands are 1,2,3,8,11,12).")
    var bands: Int = 6

    @Option(help: "Fraction of the width cut off as a nodata corner.")
    var nodataCorner: Double = 0.25

    @Option(help: "int16 or uint16 (DN, nodata 0) or float32 (reflectance 0…1, nodata NaN).")
    var type: String = "int16"

    @Option(help: "Seed of the surface texture (scenes with other seeds differ).")
    var seed: UInt64 = 1

    @Option(help: "river (one river, the seed changes the texture) or varied (covers, rivers, lakes from the seed).")
    var landscape: SceneFactory.Landscape = .river

    @Option(help: "Roughly the fraction under cloud, 0…1 (--landscape varied).")
    var clouds: Double = 0

    @Option(help: "Also write the ground truth here (uint8: water 2, land 1, nodata 0).")
    var truth: String?

    @Flag(help: "Write no CRS or geotransform.")
    var noGeoreference = false

    @Option(name: .customLong("creation-option"), help: "GDAL creation option KEY=VALUE (repeatable; replaces the defaults).")
    var creationOptions: [String] = []

    func run() throws {
        ConsoleLogHandler.bootstrap(label: "create-scene")
        var spec = SceneFactory.Spec()
        spec.width = width
        spec.height = height
        spec.bands = bands
        spec.nodataCorner = nodataCorner
        spec.georeferenced = !noGeoreference
        spec.seed = seed
        spec.landscape = landscape
        spec.cloudCover = clouds
        guard (0...1).contains(clouds), clouds == 0 || landscape == .varied else {
            fail(Logger(label: "create-scene"), "--clouds takes a fraction in 0…1 and needs --landscape varied", status: ExitStatus.usage)
        }
        switch type {
        case "int16": spec.type = .int16
        case "uint16": spec.type = .uint16
        case "float32": spec.type = .float32
        default: fail(Logger(label: "create-scene"), "--type must be int16, uint16 or float32", status: ExitStatus.usage)
        }
        if !creationOptions.isEmpty { spec.creationOptions = creationOptions }
        do {
            try SceneFactory.create(spec, at: path, truth: truth)
            print("wrote \(path): \(width)×\(height), \(bands) \(spec.type) bands, \(landscape) landscape\(truth.map { ", truth \($0)" } ?? "")")
        } catch {
            fail(Logger(label: "create-scene"), error, status: ExitStatus.cannotCreateOutput)
        }
    }
}

extension SceneFactory.Landscape: ExpressibleByArgument {}
