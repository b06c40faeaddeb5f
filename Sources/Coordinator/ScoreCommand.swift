import ArgumentParser
import Foundation
import Geo
import Logging
import Support

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Compare a mask with its ground truth: IoU, precision and recall per class.",
        discussion: """
        TRUTH holds class index + 1 and 0 where the truth is unknown (create-scene --truth writes
        water 2, land 1, 0 outside the swath and under clouds); those pixels are left out. A mask
        of only 0 and 255 is read as segment writes two-class masks (255 water, 0 land); other
        masks as class index + 1, 0 counting as a miss. Both must be on the same grid.

          coordinator score demo/mask.tif demo/truth.tif
        """
    )

    @Argument(help: "The mask to score (segment's output).")
    var mask: String

    @Argument(help: "The ground truth on the same grid.")
    var truth: String

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        ConsoleLogHandler.bootstrap(label: "score")
        let logger = Logger(label: "score")
        for path in [mask, truth] where !FileManager.default.fileExists(atPath: path) {
            fail(logger, "\(path): no such file", status: ExitStatus.noInput)
        }
        do {
            let score = try MaskScore.compare(mask: mask, truth: truth)
            if json {
                let data = try JSONSerialization.data(withJSONObject: score.jsonObject, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(score.report)
            }
        } catch {
            fail(logger, error, status: ExitStatus.badInput)
        }
    }
}
