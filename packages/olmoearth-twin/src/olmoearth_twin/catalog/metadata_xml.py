"""The SAFE metadata files behind an item's metadata assets (abridged but structurally real).

``MTD_MSIL2A.xml`` (the ``product-metadata`` asset) carries what readers parse: processing
baseline, quantification values, and, for baselines >= 04.00, ``BOA_ADD_OFFSET_VALUES_LIST`` with
``<BOA_ADD_OFFSET band_id="0..12">-1000</BOA_ADD_OFFSET>`` (band_id as in ``Spectral_Information``:
0 = B1 ... 8 = B8A, 9 = B9, 10 = B10, 11 = B11, 12 = B12), as in ESA's PSD 14.x products.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from olmoearth_twin.catalog.bands import BAND_IDS
from olmoearth_twin.catalog.schedule import Acquisition

_L2A_NS = "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd"
_TILE_NS = "https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-2A_Tile_Metadata.xsd"
_DS_NS = "https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-2A_Datastrip_Metadata.xsd"
# (band, min nm, max nm, central nm, resolution m, solar irradiance W/m²/µm)
_SPECTRAL = (
    ("B1", 411, 456, 442.7, 60, 1884.69),
    ("B2", 456, 533, 492.7, 10, 1959.66),
    ("B3", 538, 583, 559.8, 10, 1823.24),
    ("B4", 646, 684, 664.6, 10, 1512.06),
    ("B5", 695, 714, 704.1, 20, 1424.64),
    ("B6", 731, 749, 740.5, 20, 1287.61),
    ("B7", 769, 797, 782.8, 20, 1162.08),
    ("B8", 760, 907, 832.8, 10, 1041.63),
    ("B8A", 837, 881, 864.7, 20, 955.32),
    ("B9", 932, 958, 945.1, 60, 812.92),
    ("B10", 1337, 1412, 1373.5, 60, 367.15),
    ("B11", 1539, 1682, 1613.7, 20, 245.59),
    ("B12", 2078, 2320, 2202.4, 20, 85.25),
)


@dataclass(frozen=True)
class ProductNames:
    """Identifiers shared by an item's metadata files and hrefs."""

    product_uri: str
    granule_id: str
    datastrip_id: str
    datatake_id: str
    granule_dir: str
    image_stem: str  # e.g. GRANULE/<dir>/IMG_DATA/R10m/T10UFA_20220101T190000 (no band suffix)


def _sub(parent: ET.Element, tag: str, text: object | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = str(text)
    return el


def _iso_ms(when: object) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"  # type: ignore[attr-defined]


def _serialise(root: ET.Element) -> bytes:
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + ET.tostring(root, encoding="utf-8")


def product_metadata(
    *,
    acq: Acquisition,
    names: ProductNames,
    cloud_cover: float,
    footprint_latlon: list[float],
    reflectance_conversion: float,
) -> bytes:
    """``MTD_MSIL2A.xml``; ``footprint_latlon`` is the flat ``lat lon lat lon ...`` ring of the item."""
    ET.register_namespace("n1", _L2A_NS)
    root = ET.Element(f"{{{_L2A_NS}}}Level-2A_User_Product")
    general = _sub(root, f"{{{_L2A_NS}}}General_Info")
    info = _sub(general, "Product_Info")
    _sub(info, "PRODUCT_START_TIME", _iso_ms(acq.sensing))
    _sub(info, "PRODUCT_STOP_TIME", _iso_ms(acq.sensing))
    _sub(info, "PRODUCT_URI", names.product_uri)
    _sub(info, "PROCESSING_LEVEL", "Level-2A")
    _sub(info, "PRODUCT_TYPE", "S2MSI2A")
    _sub(info, "PROCESSING_BASELINE", acq.baseline)
    _sub(info, "GENERATION_TIME", acq.generation.strftime("%Y-%m-%dT%H:%M:%S.000000Z"))
    datatake = _sub(info, "Datatake", datatakeIdentifier=names.datatake_id)
    _sub(datatake, "SPACECRAFT_NAME", acq.platform)
    _sub(datatake, "DATATAKE_TYPE", "INS-NOBS")
    _sub(datatake, "DATATAKE_SENSING_START", _iso_ms(acq.sensing))
    _sub(datatake, "SENSING_ORBIT_NUMBER", acq.relative_orbit)
    _sub(datatake, "SENSING_ORBIT_DIRECTION", "DESCENDING")
    _sub(_sub(info, "Query_Options", completeSingleTile="true"), "PRODUCT_FORMAT", "SAFE_COMPACT")
    granule = _sub(
        _sub(_sub(info, "Product_Organisation"), "Granule_List"),
        "Granule",
        datastripIdentifier=names.datastrip_id,
        granuleIdentifier=names.granule_id,
        imageFormat="JPEG2000",
    )
    for band in ("B02", "B03", "B04", "B08", "AOT", "WVP", "TCI"):
        _sub(granule, "IMAGE_FILE", f"{names.image_stem}_{band}_10m")
    chars = _sub(general, "Product_Image_Characteristics")
    for text, index in (("NODATA", 0), ("SATURATED", 65535)):
        special = _sub(chars, "Special_Values")
        _sub(special, "SPECIAL_VALUE_TEXT", text)
        _sub(special, "SPECIAL_VALUE_INDEX", index)
    quant = _sub(chars, "QUANTIFICATION_VALUES_LIST")
    _sub(quant, "BOA_QUANTIFICATION_VALUE", 10000, unit="none")
    _sub(quant, "AOT_QUANTIFICATION_VALUE", "1000.0", unit="none")
    _sub(quant, "WVP_QUANTIFICATION_VALUE", "1000.0", unit="cm")
    if acq.boa_offset:
        offsets = _sub(chars, "BOA_ADD_OFFSET_VALUES_LIST")
        for band_id in sorted(BAND_IDS.values()):
            _sub(offsets, "BOA_ADD_OFFSET", -1000, band_id=str(band_id))
    conversion = _sub(chars, "Reflectance_Conversion")
    _sub(conversion, "U", f"{reflectance_conversion:.14f}")
    irradiance = _sub(conversion, "Solar_Irradiance_List")
    spectral = _sub(chars, "Spectral_Information_List")
    for band_id, (name, lo, hi, centre, res, e0) in enumerate(_SPECTRAL):
        _sub(irradiance, "SOLAR_IRRADIANCE", e0, bandId=str(band_id), unit="W/m²/µm")
        info_el = _sub(spectral, "Spectral_Information", bandId=str(band_id), physicalBand=name)
        _sub(info_el, "RESOLUTION", res)
        wavelength = _sub(info_el, "Wavelength")
        _sub(wavelength, "MIN", lo, unit="nm")
        _sub(wavelength, "MAX", hi, unit="nm")
        _sub(wavelength, "CENTRAL", centre, unit="nm")
    geometric = _sub(root, f"{{{_L2A_NS}}}Geometric_Info")
    footprint = _sub(_sub(geometric, "Product_Footprint"), "Product_Footprint")
    _sub(_sub(footprint, "Global_Footprint"), "EXT_POS_LIST", " ".join(f"{v:.7f}" for v in footprint_latlon))
    _sub(footprint, "RASTER_CS_TYPE", "POINT")
    _sub(footprint, "PIXEL_ORIGIN", 1)
    quality = _sub(root, f"{{{_L2A_NS}}}Quality_Indicators_Info")
    _sub(quality, "Cloud_Coverage_Assessment", f"{cloud_cover:.6f}")
    return _serialise(root)


def tile_metadata(
    *,
    acq: Acquisition,
    names: ProductNames,
    epsg: int,
    mgrs: str,
    shape_10m: tuple[int, int],
    ulx: float,
    uly: float,
) -> bytes:
    """``GRANULE/<dir>/MTD_TL.xml`` with the crop's geocoding (what the COGs actually cover)."""
    ET.register_namespace("n1", _TILE_NS)
    root = ET.Element(f"{{{_TILE_NS}}}Level-2A_Tile_ID")
    general = _sub(root, f"{{{_TILE_NS}}}General_Info")
    _sub(general, "TILE_ID", names.granule_id)
    _sub(general, "DATASTRIP_ID", names.datastrip_id)
    _sub(general, "SENSING_TIME", _iso_ms(acq.sensing))
    geocoding = _sub(_sub(root, f"{{{_TILE_NS}}}Geometric_Info"), "Tile_Geocoding")
    _sub(geocoding, "HORIZONTAL_CS_NAME", f"WGS84 / UTM zone {mgrs[:2]}")
    _sub(geocoding, "HORIZONTAL_CS_CODE", f"EPSG:{epsg}")
    for res, f in ((10, 1), (20, 2), (60, 6)):
        size = _sub(geocoding, "Size", resolution=str(res))
        _sub(size, "NROWS", shape_10m[0] // f)
        _sub(size, "NCOLS", shape_10m[1] // f)
        position = _sub(geocoding, "Geoposition", resolution=str(res))
        for tag, value in (("ULX", ulx), ("ULY", uly), ("XDIM", res), ("YDIM", -res)):
            _sub(position, tag, int(value))
    return _serialise(root)


def datastrip_metadata(*, acq: Acquisition, names: ProductNames) -> bytes:
    """``DATASTRIP/<dir>/MTD_DS.xml`` (identification only)."""
    ET.register_namespace("n1", _DS_NS)
    root = ET.Element(f"{{{_DS_NS}}}Level-2A_DataStrip_ID")
    general = _sub(root, f"{{{_DS_NS}}}General_Info")
    info = _sub(general, "Datastrip_Time_Info")
    _sub(info, "DATASTRIP_SENSING_START", _iso_ms(acq.datastrip_start))
    _sub(info, "DATASTRIP_SENSING_STOP", _iso_ms(acq.sensing))
    _sub(general, "DATASTRIP_ID", names.datastrip_id)
    _sub(general, "PROCESSING_BASELINE", acq.baseline)
    return _serialise(root)


def safe_manifest(*, names: ProductNames, files: list[str]) -> bytes:
    """``manifest.safe``: the XFDU data-object list of the product's files."""
    ns = "urn:ccsds:schema:xfdu:1"
    ET.register_namespace("xfdu", ns)
    root = ET.Element(
        f"{{{ns}}}XFDU", version="esa/safe/sentinel/1.1/sentinel-2/msi/archive_l2a_user_product"
    )
    objects = _sub(root, "dataObjectSection")
    for i, rel in enumerate(files):
        obj = _sub(objects, "dataObject", ID=f"obj_{i}")
        _sub(
            _sub(obj, "byteStream", mimeType="application/octet-stream"),
            "fileLocation",
            locatorType="URL",
            href=f"./{rel}",
        )
    _sub(root, "metadataSection").set("product", names.product_uri)
    return _serialise(root)


def inspire_metadata(*, names: ProductNames, bbox: list[float]) -> bytes:
    """``INSPIRE.xml``: ISO 19139 identification with the product's lon/lat bounding box."""
    ns = "http://www.isotc211.org/2005/gmd"
    ET.register_namespace("gmd", ns)
    root = ET.Element(f"{{{ns}}}MD_Metadata")
    _sub(root, f"{{{ns}}}fileIdentifier", names.product_uri)
    box = _sub(_sub(root, f"{{{ns}}}identificationInfo"), f"{{{ns}}}EX_GeographicBoundingBox")
    for tag, value in zip(
        ("westBoundLongitude", "southBoundLatitude", "eastBoundLongitude", "northBoundLatitude"), bbox
    ):
        _sub(box, f"{{{ns}}}{tag}", f"{value:.7f}")
    return _serialise(root)
