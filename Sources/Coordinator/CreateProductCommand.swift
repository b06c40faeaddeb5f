import ArgumentParser
import Foundation
import Geo
import Logging
import Support

extension Sentinel2ProductFactory.Level: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.uppercased()) }
}

struct CreateProductCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-product",
        abstract: "Write a small synthetic Sentinel-2 L1C or L2A product (SAFE directory or zip) for demos and tests.",
        discussion: """
        The scene of create-scene as JPEG 2000 bands (10 m B02 B03 B04 B08, 20 m B05 B06 B07 B8A
        B11 B12, L2A also SCL) in the compact SAFE layout with the XML GDAL's SENTINEL2 driver
        reads. Baselines from 04.00 store DN + 1000 and list the offset, as ESA's products do.

          coordinator create-product demo/ --level l2a --baseline 05.09
          coordinator segment MODEL demo/S2B_MSIL2A_…SAFE mask.tif
        """
    )

    @Argument(help: "Directory to write the product into (created if missing).")
    var directory: String

    @Option(help: "l1c or l2a.")
    var level: Sentinel2ProductFactory.Level = .l2a

    @Option(help: "Processing baseline, e.g. 05.09 (offset −1000) or 03.01 (none).")
    var baseline: String = "05.09"

    @Option(help: "Width on the 10 m grid (even).")
    var width: Int = 480

    @Option(help: "Height on the 10 m grid (even).")
    var height: Int = 360

    @Option(help: "Seed of the surface texture.")
    var seed: UInt64 = 1

    @Flag(help: "Write the product as a zip (as downloads come) instead of a SAFE directory.")
    var zip = false

    func validate() throws {
        guard width >= 2, height >= 2, width % 2 == 0, height % 2 == 0 else { throw ValidationError("--width and --height must be even and at least 2") }
        guard baseline.range(of: #"^\d\d\.\d\d$"#, options: .regularExpression) != nil else { throw ValidationError("--baseline is NN.NN, e.g. 05.09") }
    }

    func run() throws {
        ConsoleLogHandler.bootstrap(label: "create-product")
        var spec = Sentinel2ProductFactory.Spec()
        spec.level = level; spec.baseline = baseline; spec.width = width; spec.height = height; spec.seed = seed; spec.zip = zip
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let path = try Sentinel2ProductFactory.create(spec, in: directory)
            print(path)
        } catch {
            fail(Logger(label: "create-product"), error, status: ExitStatus.cannotCreateOutput)
        }
    }
}
