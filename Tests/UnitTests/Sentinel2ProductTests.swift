import Foundation
import Geo
import TestSupport
import Testing

/// The product reader's pure parts: band names, subdataset names, what counts as a product, and
/// the offsets and quantification read from the product XML (L1C and L2A forms).
struct Sentinel2ProductNamingTests {
    @Test func modelBandsMapToTheDriversBandNames() {
        #expect(["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"].map(Sentinel2Product.productBandName) == ["B2", "B3", "B4", "B8A", "B11", "B12"])
        #expect(["B02", "B8A", "B11", "b05", "NIR_BROAD", "COASTAL_AEROSOL"].map(Sentinel2Product.productBandName) == ["B2", "B8A", "B11", "B5", "B8", "B1"])
    }

    @Test func subdatasetNamesGiveTheirMetadataFile() {
        #expect(Sentinel2Product.metadataPath(ofSubdataset: "SENTINEL2_L2A:/data/P.SAFE/MTD_MSIL2A.xml:10m:EPSG_32630") == "/data/P.SAFE/MTD_MSIL2A.xml")
        #expect(Sentinel2Product.metadataPath(ofSubdataset: "SENTINEL2_L1C:/vsizip//d/P.zip/P.SAFE/MTD_MSIL1C.xml:20m:EPSG_32633") == "/vsizip//d/P.zip/P.SAFE/MTD_MSIL1C.xml")
        #expect(Sentinel2Product.metadataPath(ofSubdataset: "SENTINEL2_L1C:x") == nil)
    }

    @Test func productsAreRecognisedByLayoutAndName() throws {
        let dir = TemporaryDirectory("s2-naming")
        let safe = dir.file("anything")
        try FileManager.default.createDirectory(atPath: safe, withIntermediateDirectories: true)
        #expect(!Sentinel2Product.isProduct(safe))
        FileManager.default.createFile(atPath: safe + "/MTD_MSIL2A.xml", contents: Data())
        #expect(Sentinel2Product.isProduct(safe) && Sentinel2Product.isProduct(safe + "/MTD_MSIL2A.xml"))
        #expect(Sentinel2Product.isProduct("/x/S2A_MSIL1C_20200101T000000_N0208_R008_T30SYJ_20200101T000000.zip"))
        #expect(!Sentinel2Product.isProduct("/x/archive.zip") && !Sentinel2Product.isProduct("/x/scene.tif") && !Sentinel2Product.isProduct("/x/MTD_TL.xml"))
        #expect(Sentinel2Product.isProduct("/x/S2A_OPER_MTD_SAFL1C_PDMC_20160101T000000.xml"))
    }

    @Test(arguments: [("L2A", "<BOA_QUANTIFICATION_VALUE unit=\"none\">10000</BOA_QUANTIFICATION_VALUE><BOA_ADD_OFFSET_VALUES_LIST><BOA_ADD_OFFSET band_id=\"1\">-1000</BOA_ADD_OFFSET><BOA_ADD_OFFSET band_id=\"8\">-999</BOA_ADD_OFFSET></BOA_ADD_OFFSET_VALUES_LIST>"),
                      ("L1C", "<QUANTIFICATION_VALUE unit=\"none\">10000</QUANTIFICATION_VALUE><Radiometric_Offset_List><RADIO_ADD_OFFSET band_id=\"1\">-1000</RADIO_ADD_OFFSET><RADIO_ADD_OFFSET band_id=\"8\">-999</RADIO_ADD_OFFSET></Radiometric_Offset_List>")])
    func offsetsAndQuantificationComeFromTheXML(level: String, characteristics: String) throws {
        let dir = TemporaryDirectory("s2-xml")
        let xml = dir.file("MTD_MSI\(level).xml")
        try """
        <?xml version="1.0" encoding="UTF-8"?>
        <n1:Level-\(level.dropFirst())_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/x.xsd"><n1:General_Info>
        <Product_Info><Product_Organisation><Granule_List><Granule><IMAGE_FILE>GRANULE/G/IMG_DATA/T_B02</IMAGE_FILE></Granule></Granule_List></Product_Organisation></Product_Info>
        <Product_Image_Characteristics>\(characteristics)</Product_Image_Characteristics></n1:General_Info></n1:Level-\(level.dropFirst())_User_Product>
        """.write(toFile: xml, atomically: true, encoding: .utf8)
        let metadata = try Sentinel2Metadata(xml: xml)
        #expect(metadata.offsets == ["B2": -1000, "B8A": -999])
        #expect(metadata.quantification == 10000)
        #expect(metadata.imageFiles == ["GRANULE/G/IMG_DATA/T_B02"])
        #expect(throws: Sentinel2Product.Failure.self) { try Sentinel2Metadata(xml: dir.file("missing.xml")) }
    }
}
