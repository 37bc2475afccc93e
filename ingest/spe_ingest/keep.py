"""What the allow-list keeps besides the rule table.

An element is written to the output only if the rule table says so, or it is
listed here because a valid, usable image of its SOP class needs it and it
does not identify anyone: SOP Common, the Image Pixel module, geometry,
acquisition technique, presentation (window, LUTs) and the codes inside
code sequences.  Everything else public, and every private element, is
removed.  Keep this list short and boring: each entry must be a technical
parameter, never free text that a person types.
"""
from __future__ import annotations

from .dictionary import tag as tag_for_keyword

KEEP_KEYWORDS = """
SpecificCharacterSet ImageType SOPClassUID Modality
ConversionType Manufacturer ManufacturerModelName
PatientIdentityRemoved DeidentificationMethod DeidentificationMethodCodeSequence
LongitudinalTemporalInformationModified QualityControlImage BurnedInAnnotation
RecognizableVisualFeatures
CodeValue CodingSchemeDesignator CodingSchemeVersion CodeMeaning LongCodeValue
URNCodeValue MappingResource ContextIdentifier ContextUID
ReferencedSOPClassUID ReferencedFrameNumber ReferencedSegmentNumber
BodyPartExamined PatientPosition ViewPosition Laterality ImageLaterality
AnatomicRegionSequence PrimaryAnatomicStructureSequence
ScanningSequence SequenceVariant ScanOptions MRAcquisitionType SequenceName
AngioFlag SliceThickness KVP RepetitionTime EchoTime InversionTime
NumberOfAverages ImagingFrequency ImagedNucleus EchoNumbers
MagneticFieldStrength SpacingBetweenSlices NumberOfPhaseEncodingSteps
DataCollectionDiameter EchoTrainLength PercentSampling PercentPhaseFieldOfView
PixelBandwidth ReconstructionDiameter GantryDetectorTilt TableHeight
RotationDirection ExposureTime XRayTubeCurrent Exposure FilterType
GeneratorPower FocalSpots ConvolutionKernel AcquisitionMatrix
InPlanePhaseEncodingDirection FlipAngle VariableFlipAngleFlag SAR dBdt
ReceiveCoilName TransmitCoilName TriggerTime NominalInterval HeartRate
CardiacNumberOfImages ImagesInAcquisition DiffusionBValue
SpiralPitchFactor CTDIvol RevolutionTime SingleCollimationWidth
TotalCollimationWidth TableSpeed TableFeedPerRotation
ContrastBolusRoute ContrastBolusVolume ContrastBolusTotalDose
ContrastBolusIngredient ContrastBolusIngredientConcentration
SeriesNumber AcquisitionNumber
InstanceNumber PatientOrientation ImagePositionPatient ImageOrientationPatient
PositionReferenceIndicator SliceLocation
TemporalPositionIdentifier NumberOfTemporalPositions TemporalResolution
StackID InStackPositionNumber
SamplesPerPixel PhotometricInterpretation PlanarConfiguration NumberOfFrames
FrameIncrementPointer FrameTime Rows Columns PixelSpacing PixelAspectRatio
ImagerPixelSpacing BitsAllocated BitsStored HighBit PixelRepresentation
SmallestImagePixelValue LargestImagePixelValue PixelPaddingValue
PixelPaddingRangeLimit
RedPaletteColorLookupTableDescriptor GreenPaletteColorLookupTableDescriptor
BluePaletteColorLookupTableDescriptor RedPaletteColorLookupTableData
GreenPaletteColorLookupTableData BluePaletteColorLookupTableData
SegmentedRedPaletteColorLookupTableData SegmentedGreenPaletteColorLookupTableData
SegmentedBluePaletteColorLookupTableData
LossyImageCompression LossyImageCompressionRatio LossyImageCompressionMethod
WindowCenter WindowWidth WindowCenterWidthExplanation VOILUTFunction
RescaleIntercept RescaleSlope RescaleType ModalityLUTSequence VOILUTSequence
LUTDescriptor LUTExplanation ModalityLUTType LUTData PresentationLUTShape
PixelIntensityRelationship PixelIntensityRelationshipSign
PixelData FloatPixelData DoubleFloatPixelData ExtendedOffsetTable
ExtendedOffsetTableLengths
SharedFunctionalGroupsSequence PerFrameFunctionalGroupsSequence
PixelMeasuresSequence PlanePositionSequence PlaneOrientationSequence
FrameContentSequence FrameAcquisitionNumber DimensionIndexValues
DimensionIndexSequence DimensionIndexPointer FunctionalGroupPointer
DimensionOrganizationSequence DimensionOrganizationType
PixelValueTransformationSequence FrameVOILUTSequence CTImageFrameTypeSequence
MRImageFrameTypeSequence FrameType ContentQualification
""".split()

KEEP_TAGS = frozenset(tag_for_keyword(k) for k in KEEP_KEYWORDS)
assert None not in KEEP_TAGS, [k for k in KEEP_KEYWORDS if tag_for_keyword(k) is None]

# PS3.15 Table E.3.10-1 "Exemplary Safe Private Attributes" -- a deliberately
# small subset (diffusion parameters): (private creator, group, element within
# the block).  Only these are kept with retain-safe-private, together with
# their private creator element.  Extend only from the standard's table.
SAFE_PRIVATE = frozenset({
    ("SIEMENS MR HEADER", 0x0019, 0x0C),   # B_value
    ("SIEMENS MR HEADER", 0x0019, 0x0D),   # DiffusionDirectionality
    ("SIEMENS MR HEADER", 0x0019, 0x0E),   # DiffusionGradientDirection
    ("SIEMENS MR HEADER", 0x0019, 0x27),   # B_matrix
    ("GEMS_PARM_01", 0x0043, 0x39),        # slop_int_6..9 (b-value)
    ("Philips Imaging DD 001", 0x2001, 0x03),  # Diffusion B-Factor
})
