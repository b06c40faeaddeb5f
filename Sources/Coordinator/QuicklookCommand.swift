import ArgumentParser
import Foundation
import Geo
import Logging
import Support

struct QuicklookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quicklook",
        abstract: "Write a PNG of a scene in false colour with a mask's water laid over it.",
        discussion: """
        Bands 5,4,3 by default (SWIR-1, NIR, red of the model's six: water near black, vegetation
        green, bare soil pink), each stretched between its 2nd and 98th percentile; the mask's
        water (255) in cyan. Scenes larger than --max-side are decimated.

          coordinator quicklook demo/scene.tif demo/mask.tif demo/quicklook.png
        """
    )

    @Argument(help: "The scene (a GDAL-readable raster).")
    var scene: String

    @Argument(help: "A mask on the scene's grid (segment's output), or - for none.")
    var mask: String

    @Argument(help: "PNG to write.")
    var output: String

    @Option(help: "Three 1-based bands for red, green, blue.")
    var bands = "5,4,3"

    @Option(help: "Longest side of the picture in pixels.")
    var maxSide = 1200

    func validate() throws {
        let parsed = bands.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        guard parsed.count == 3, parsed.allSatisfy({ ($0 ?? 0) >= 1 }) else { throw ValidationError("--bands is three 1-based band numbers, e.g. 5,4,3") }
        guard maxSide >= 16 else { throw ValidationError("--max-side must be at least 16") }
        guard output.lowercased().hasSuffix(".png") else { throw ValidationError("\(output): a quicklook is a .png") }
    }

    func run() throws {
        ConsoleLogHandler.bootstrap(label: "quicklook")
        let logger = Logger(label: "quicklook")
        for path in [scene, mask] where path != "-" && !FileManager.default.fileExists(atPath: path) {
            fail(logger, "\(path): no such file", status: ExitStatus.noInput)
        }
        do {
            try Quicklook.write(scene: scene, mask: mask == "-" ? nil : mask, to: output,
                                bands: bands.split(separator: ",").map { Int($0)! - 1 }, maxSide: maxSide)
            print("wrote \(output)")
        } catch {
            fail(logger, error, status: ExitStatus.badInput)
        }
    }
}
