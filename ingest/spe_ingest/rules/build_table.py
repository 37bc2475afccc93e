"""Regenerate (or check) ``ps3.15_e1-1.tsv``, the PS3.15 Table E.1-1 rule table.

The table is written from the standard's Table E.1-1 ("Application Level
Confidentiality Profile Attributes"), transcribed below as one line per
attribute: ``Keyword  BASIC  [flags]``.  Tags, names and VRs come from
pydicom's data dictionary, so a keyword typo fails loudly.

Option columns follow the regular structure of the standard's table:

* every date/time attribute (VR DA, DT, TM) is ``K`` for *Rtn. Long. Full
  Dates* and ``C`` for *Rtn. Long. Modif. Dates*;
* every attribute whose basic action involves ``U`` is ``K`` for *Rtn. UIDs*;
* the remaining option cells are given per line by flags:
  ``d``/``dc`` Rtn. Dev. Id. K/C, ``i`` Rtn. Inst. Id. K, ``p``/``pc``
  Rtn. Pat. Chars. K/C, ``cd`` Clean Desc. C, ``cs`` Clean Struct. Cont. C,
  ``cg`` Clean Graph. C, ``uk`` Rtn. UIDs K on a non-U row.

Repeating-group rows (curves 50xx, overlays 60xx) and the private-attribute
row are written as masks.

Usage::

    python -m spe_ingest.rules.build_table          # rewrite the TSV
    python -m spe_ingest.rules.build_table --check  # exit 1 if it would change
"""
from __future__ import annotations

import sys
from pathlib import Path

from pydicom.datadict import dictionary_VR, get_entry, tag_for_keyword

COLUMNS = (
    "basic", "rtn_safe_priv", "rtn_uids", "rtn_dev_id", "rtn_inst_id",
    "rtn_pat_chars", "rtn_long_full_dates", "rtn_long_modif_dates",
    "clean_desc", "clean_struct_cont", "clean_graph",
)
FLAG_CELLS = {
    "sp": ("rtn_safe_priv", "C"), "uk": ("rtn_uids", "K"),
    "d": ("rtn_dev_id", "K"), "dc": ("rtn_dev_id", "C"),
    "i": ("rtn_inst_id", "K"), "p": ("rtn_pat_chars", "K"),
    "pc": ("rtn_pat_chars", "C"), "cd": ("clean_desc", "C"),
    "cs": ("clean_struct_cont", "C"), "cg": ("clean_graph", "C"),
}
TSV = Path(__file__).with_name("ps3.15_e1-1.tsv")

# Masked rows: (tag mask, name, basic, flags, is date/time)
MASK_ROWS = [
    ("50xx,xxxx", "Curve Data", "X", "cg", False),
    ("60xx,3000", "Overlay Data", "X", "cg", False),
    ("60xx,4000", "Overlay Comments", "X", "cd", False),
    ("gggg,eeee odd group", "Private Attributes", "X", "sp", False),
]

SOURCE = """
AccessionNumber Z
AcquisitionComments X cd
AcquisitionContextSequence X/Z cs
AcquisitionDate X/Z
AcquisitionDateTime X/Z/D
AcquisitionDeviceProcessingDescription X/D dc cd
AcquisitionFieldOfViewLabel D cd
AcquisitionProtocolDescription X cd
AcquisitionTime X/Z
AcquisitionUID U
ActualHumanPerformersSequence X
AdditionalPatientHistory X pc cd
AdmissionID X
AdmittingDate X
AdmittingDiagnosesCodeSequence X pc cs
AdmittingDiagnosesDescription X pc cd
AdmittingTime X
AffectedSOPInstanceUID X uk
Allergies X pc cd
AnnotationGroupDescription X cd
AnnotationGroupLabel D cd
AnnotationGroupUID U
Arbitrary X
AssertionDateTime D
AssertionExpirationDateTime X
AttributeModificationDateTime D
AuthorObserverSequence X
BarcodeValue X/Z
BranchOfService X
CassetteID X d
CertificateOfSigner D
ClinicalTrialProtocolEthicsCommitteeName D
ClinicalTrialProtocolID D
ClinicalTrialSponsorName D
ClinicalTrialSubjectID D
ClinicalTrialSubjectReadingID D
ClinicalTrialTimePointDescription X cd
CommentsOnThePerformedProcedureStep X cd
ConcatenationUID U
ConfidentialityConstraintOnPatientDataDescription X
ConsultingPhysicianName Z
ConsultingPhysicianIdentificationSequence X
ContainerIdentifier D
ContentCreatorIdentificationCodeSequence X
ContentCreatorName Z/D
ContentDate Z/D
ContentSequence X cs
ContentTime Z/D
ContextGroupExtensionCreatorUID U
ContrastBolusAgent Z/D cd
ContributionDescription X dc cd
CountryOfResidence X
CreatorVersionUID U
CurrentPatientLocation X
CurveDate X
CurveTime X
CustodialOrganizationSequence X i
DataSetTrailingPadding X
DateOfLastCalibration X
DateOfLastDetectorCalibration X/D
DateOfSecondaryCapture X
DateTimeOfLastCalibration X
DerivationDescription X cd
DetectorID X/D d
DeviceDescription X d cd
DeviceSerialNumber X/Z/D d
DeviceUID U d
DigitalSignatureDateTime D
DigitalSignatureUID U
DigitalSignaturesSequence X
DimensionOrganizationUID U
DischargeDiagnosisDescription X pc cd
DistributionAddress X
DistributionName X
DoseReferenceUID U
EncapsulatedDocument D
EndAcquisitionDateTime X/D
EthnicGroup X p
ExpiryDate X
FailedSOPInstanceUIDList U
FiducialUID U
FillerOrderNumberImagingServiceRequest Z
FrameComments X cd
FrameOfReferenceUID U
GantryID X d
GeneratorID X d
GraphicAnnotationSequence D cg
HumanPerformerName X
HumanPerformerOrganization X i
IconImageSequence X
IdentifyingComments X cd
ImageComments X cd
ImagePresentationComments X cd
ImagingServiceRequestComments X cd
Impressions X cd
InstanceCreationDate X/D
InstanceCreationTime X/Z/D
InstanceCreatorUID U
InstitutionAddress X i
InstitutionCodeSequence X/Z/D i
InstitutionName X/Z/D i
InstitutionalDepartmentName X i
InstitutionalDepartmentTypeCodeSequence X i
InsurancePlanIdentification X
IntendedRecipientsOfResultsIdentificationSequence X
InterpretationApproverSequence X
InterpretationAuthor X
InterpretationDiagnosisDescription X cd
InterpretationIDIssuer X
InterpretationRecorder X
InterpretationText X cd
InterpretationTranscriber X
IrradiationEventUID U
IssuerOfAdmissionID X
IssuerOfAdmissionIDSequence X
IssuerOfPatientID X
IssuerOfServiceEpisodeID X
IssuerOfServiceEpisodeIDSequence X
LabelText X/Z
LargePaletteColorLookupTableUID U
LastMenstrualDate X
MAC X
ManufacturerDeviceClassUID U d
MediaStorageSOPInstanceUID U
MedicalAlerts X pc cd
MedicalRecordLocator X
MilitaryRank X
ModifiedAttributesSequence X
ModifiedImageDescription X cd
ModifyingDeviceID X d
NameOfPhysiciansReadingStudy X
NamesOfIntendedRecipientsOfResults X
ObservationDateTime X/D
ObservationUID U
Occupation X pc cd
OperatorIdentificationSequence X/D
OperatorsName X/Z/D
OrderCallbackPhoneNumber X
OrderCallbackTelecomInformation X
OrderEnteredBy X
OrderEntererLocation X
OriginalAttributesSequence X
OtherPatientIDs X
OtherPatientIDsSequence X
OtherPatientNames X
PaletteColorLookupTableUID U
ParticipantSequence X
PatientAddress X
PatientAge X p
PatientBirthDate Z
PatientBirthName X
PatientBirthTime X
PatientComments X pc cd
PatientID Z/D
PatientInstitutionResidence X
PatientInsurancePlanCodeSequence X
PatientMotherBirthName X
PatientName Z
PatientPrimaryLanguageCodeSequence X
PatientPrimaryLanguageModifierCodeSequence X
PatientReligiousPreference X
PatientSetupUID U
PatientSex Z p
PatientSexNeutered X/Z p
PatientSize X p
PatientSizeCodeSequence X p
PatientState X pc cd
PatientTelecomInformation X
PatientTelephoneNumbers X
PatientTransportArrangements X
PatientWeight X p
PerformedLocation X
PerformedProcedureStepDescription X cd
PerformedProcedureStepEndDate X
PerformedProcedureStepEndDateTime X
PerformedProcedureStepEndTime X
PerformedProcedureStepID X
PerformedProcedureStepStartDate X
PerformedProcedureStepStartDateTime X
PerformedProcedureStepStartTime X
PerformedStationAETitle X
PerformedStationGeographicLocationCodeSequence X
PerformedStationName X
PerformedStationNameCodeSequence X
PerformingPhysicianIdentificationSequence X
PerformingPhysicianName X
PersonAddress X
PersonIdentificationCodeSequence D
PersonName D
PersonTelecomInformation X
PersonTelephoneNumbers X
PhysicianApprovingInterpretation X
PhysiciansOfRecord X
PhysiciansOfRecordIdentificationSequence X
PhysiciansReadingStudyIdentificationSequence X
PlateID X d
PreMedication X pc
PregnancyStatus X p
PresentationDisplayCollectionUID U
PresentationSequenceCollectionUID U
ProtocolName X/D cd
PyramidUID U
ReasonForTheImagingServiceRequest X cd
ReasonForStudy X cd
ReasonForTheAttributeModification D
ReferencedDigitalSignatureSequence X
ReferencedFrameOfReferenceUID U
ReferencedGeneralPurposeScheduledProcedureStepTransactionUID U
ReferencedImageSequence X/Z/U*
ReferencedObservationUIDTrial U
ReferencedPatientAliasSequence X
ReferencedPatientPhotoSequence X
ReferencedPatientSequence X
ReferencedPerformedProcedureStepSequence X/Z/D
ReferencedSOPInstanceMACSequence X
ReferencedSOPInstanceUID U
ReferencedSOPInstanceUIDInFile U
ReferencedStudySequence X/Z
ReferringPhysicianAddress X
ReferringPhysicianIdentificationSequence X
ReferringPhysicianName Z
ReferringPhysicianTelephoneNumbers X
RegionOfResidence X
RelatedFrameOfReferenceUID U
RequestAttributesSequence X
RequestedContrastAgent X cd
RequestedProcedureComments X cd
RequestedProcedureDescription X/Z cd
RequestedProcedureID X
RequestedProcedureLocation X
RequestedSOPInstanceUID U
RequestingPhysician X
RequestingService X
RequestingPhysicianIdentificationSequence X
ResponsibleOrganization X
ResponsiblePerson X
ResultsComments X cd
ResultsDistributionListSequence X
ResultsIDIssuer X
ReviewerName X/Z
ScheduledHumanPerformersSequence X
ScheduledPatientInstitutionResidence X
ScheduledPerformingPhysicianIdentificationSequence X
ScheduledPerformingPhysicianName X
ScheduledProcedureStepDescription X cd
ScheduledProcedureStepEndDate X
ScheduledProcedureStepEndTime X
ScheduledProcedureStepID X
ScheduledProcedureStepLocation X
ScheduledProcedureStepModificationDateTime X
ScheduledProcedureStepStartDate X
ScheduledProcedureStepStartDateTime X
ScheduledProcedureStepStartTime X
ScheduledStationAETitle X
ScheduledStationGeographicLocationCodeSequence X
ScheduledStationName X
ScheduledStationNameCodeSequence X
ScheduledStudyLocation X
ScheduledStudyLocationAETitle X
SeriesDate X/D
SeriesDescription X cd
SeriesInstanceUID U
SeriesTime X/D
ServiceEpisodeDescription X cd
ServiceEpisodeID X
SmokingStatus X p
SOPInstanceUID U
SourceImageSequence X/Z/U*
SourceSerialNumber X/Z d
SpecialNeeds X pc cd
SpecimenUID U
StartAcquisitionDateTime X/D
StationName X/Z/D d
StorageMediaFileSetUID U
StudyComments X cd
StudyDate Z
StudyDescription X cd
StudyID Z
StudyIDIssuer X
StudyInstanceUID U
StudyTime Z
SynchronizationFrameOfReferenceUID U
TargetUID U
TemplateExtensionCreatorUID U
TemplateExtensionOrganizationUID U
TextComments X cd
TextString X cd
TimeOfLastCalibration X
TimeOfLastDetectorCalibration X/D
TimezoneOffsetFromUTC X
TopicAuthor X
TopicKeywords X
TopicSubject X
TopicTitle X
TrackingUID U
TransactionUID U
TreatmentMachineName X/Z d
UID U
VerifyingObserverIdentificationCodeSequence Z
VerifyingObserverName D
VerifyingObserverSequence D
VerifyingOrganization D
VisitComments X cd
"""

# Rows of the current edition (2024-2026 revisions: RT, GPS/EXIF, selector
# values, clinical-trial issuers, ...) that were missing from the transcription
# above and were added after reviewing each one against the diff that
# tests/ingest/test_rule_table.py prints against dicom-anonymizer's copy.
SOURCE_REVIEWED = """
AcquisitionContextDescription X cd
AddressTrial X
ApprovalStatusDateTime X
BeamDescription X cd
BeamHoldTransitionDateTime D
BolusDescription X cd
CalibrationDate X
CalibrationDateTime Z
CalibrationTime X
CameraOwnerName X
CertifiedTimestamp X
ChannelDerivationDescription X cd
ChannelLabel X
ClinicalTrialCoordinatingCenterName Z
ClinicalTrialProtocolEthicsCommitteeApprovalNumber X
ClinicalTrialProtocolName Z
ClinicalTrialSeriesDescription X cd
ClinicalTrialSeriesID X
ClinicalTrialSiteID Z
ClinicalTrialSiteName Z
ClinicalTrialTimePointID Z
CommentsOnRadiationDose X
CompensatorDescription X cd
ConceptualVolumeCombinationDescription Z cd
ConceptualVolumeDescription Z cd
ConceptualVolumeUID U
ConstituentConceptualVolumeUID U
ContainerComponentID X
ContainerDescription X cd
ContextGroupLocalVersion D
ContextGroupVersion D
ContrastBolusStartTime X
ContrastBolusStopTime X
ContributionDateTime X
CreationDate X
CreationTime X
CurrentObserverTrial X
Date D
DateOfDocumentOrVerbalTransactionTrial X
DateOfInstallation X
DateOfManufacture X
DateTime D
DecayCorrectionDateTime D
DecompositionDescription X cd
DestinationAE D
DeviceAlternateIdentifier Z d
DeviceLabel D d
DeviceSettingDescription X cd
DischargeDate X
DischargeTime X
DisplacementReferenceLabel X
DoseReferenceDescription X cd
DosimetricObjectiveUID U
EffectiveDateTime D
EntityDescription X cd
EntityLabel D
EntityLongLabel D
EntityName X
EquipmentFrameOfReferenceDescription X cd
EthicsCommitteeApprovalEffectivenessEndDate X
EthicsCommitteeApprovalEffectivenessStartDate X
EthnicGroupCodeSequence X p
ExclusionStartDateTime D
ExpectedCompletionDateTime X
FilterLookupTableDescription X cd
FindingsGroupRecordingDateTrial X
FindingsGroupRecordingTimeTrial X
FirstTreatmentDate X/D
FixationDeviceDescription X cd
FlowIdentifier D
FlowIdentifierSequence D
FractionGroupDescription X cd
FractionationNotes Z cd
FrameAcquisitionDateTime D
FrameOriginTimestamp D
FrameReferenceDateTime D
FunctionalSyncPulse D
GPSAltitude X
GPSAltitudeRef X
GPSAreaInformation X
GPSDOP X
GPSDateStamp X
GPSDestBearing X
GPSDestBearingRef X
GPSDestDistance X
GPSDestDistanceRef X
GPSDestLatitude X
GPSDestLatitudeRef X
GPSDestLongitude X
GPSDestLongitudeRef X
GPSDifferential X
GPSImgDirection X
GPSImgDirectionRef X
GPSLatitude X
GPSLatitudeRef X
GPSLongitude X
GPSLongitudeRef X
GPSMapDatum X
GPSMeasureMode X
GPSProcessingMethod X
GPSSatellites X
GPSSpeed X
GPSSpeedRef X
GPSStatus X
GPSTimeStamp X
GPSTrack X
GPSTrackRef X
GPSVersionID X
HL7DocumentEffectiveTime X
HangingProtocolCreationDateTime D
HardcopyCreationDeviceID X
ImpedanceMeasurementDateTime D
InformationIssueDateTime D
InstanceCoercionDateTime X
InstanceOriginStatus X
InstructionPerformedDateTime Z/D
IntendedFractionStartTime X
IntendedPhaseEndDate X/D
IntendedPhaseStartDate X/D
InterlockDateTime D
InterlockDescription D cd
InterlockOriginDescription D cd
InterpretationApprovalDate X
InterpretationApprovalTime X
InterpretationID X
InterpretationRecordedDate X
InterpretationRecordedTime X
InterpretationTranscriptionDate X
InterpretationTranscriptionTime X
InterventionDrugStartTime X
InterventionDrugStopTime X
IssueDateOfImagingServiceRequest X
IssueTimeOfImagingServiceRequest X
IssuerOfClinicalTrialProtocolID X
IssuerOfClinicalTrialSeriesID X
IssuerOfClinicalTrialSiteID X
IssuerOfClinicalTrialSubjectID X
IssuerOfClinicalTrialSubjectReadingID X
IssuerOfClinicalTrialTimePointID X
IssuerOfTheContainerIdentifierSequence Z
IssuerOfTheSpecimenIdentifierSequence Z
LensMake X
LensModel X
LensSerialNumber X
LensSpecification X
LongDeviceDescription X cd
MakerNote X
ManufacturerDeviceIdentifier Z d
ModifiedImageDate X
ModifiedImageTime X
ModifyingSystem D
MostRecentTreatmentDate X/D
MultienergyAcquisitionDescription X cd
MultiplexGroupLabel X
MultiplexGroupUID U
NetworkID X
NonconformingDataElementValue X
NonconformingModifiedAttributesSequence X
ObservationDateTrial X
ObservationStartDateTime X
ObservationSubjectUIDTrial U
ObservationTimeTrial X
Originator X
OtherClinicalTrialProtocolIDsSequence X
OverlayDate X
OverlayTime X
OverrideDateTime D
ParticipationDateTime Z
PatientSetupPhotoDescription X cd
PatientTreatmentPreparationMethodDescription X cd
PatientTreatmentPreparationProcedureParameterDescription X cd
PlacerOrderNumberImagingServiceRequest Z
PositionAcquisitionTemplateDescription X cd
PositionAcquisitionTemplateName X
PrescriptionDescription X cd
PrescriptionNotes Z cd
PrescriptionNotesSequence Z
PresentationCreationDate X
PresentationCreationTime X
PriorTreatmentDoseDescription X cd
ProcedureStepCancellationDateTime X
ProductExpirationDateTime X
PyramidDescription X cd
PyramidLabel X
ROICreatorSequence X
ROIDateTime X
ROIDescription X cd
ROIGenerationDescription X cd
ROIInterpreter Z
ROIInterpreterSequence X
ROIName Z
ROIObservationDateTime X
ROIObservationDescription X cd
ROIObservationLabel X
RTAccessoryDeviceSlotID Z d
RTAccessoryHolderSlotID Z d
RTPhysicianIntentNarrative Z cd
RTPlanDate X/D
RTPlanDescription X cd
RTPlanLabel D
RTPlanName X
RTPlanTime X/D
RTPrescriptionLabel D
RTToleranceSetLabel D
RTTreatmentApproachLabel X/D
RTTreatmentPhaseUID U
RadiationDoseIdentificationLabel D
RadiationDoseInVivoMeasurementLabel D
RadiationGenerationModeDescription Z cd
RadiationGenerationModeLabel D
RadiopharmaceuticalStartDateTime X
RadiopharmaceuticalStartTime X
RadiopharmaceuticalStopDateTime X
RadiopharmaceuticalStopTime X
ReasonForOmissionDescription X cd
ReasonForRequestedProcedureCodeSequence X
ReasonForSuperseding Z
ReasonForTheRequestedProcedure X
ReasonForVisit X
ReasonForVisitCodeSequence X
ReceivingAE X
RecordedRTControlPointDateTime D
ReferencedConceptualVolumeUID U
ReferencedDateTime D
ReferencedDoseReferenceUID U
ReferencedDosimetricObjectiveUID U
ReferencedFiducialsUID U
ReferencedTreatmentPositionGroupUID U
RequestedSeriesDescription X cd
RequestingAE X
RespiratoryMotionCompensationTechniqueDescription X cd
ResultsID X
RetrieveAETitle X
ReviewDate Z
ReviewTime Z
SOPAuthorizationDateTime X
SafePositionExitDate D
SafePositionExitTime D
SafePositionReturnDate D
SafePositionReturnTime D
ScheduledAdmissionDate X
ScheduledAdmissionTime X
ScheduledDischargeDate X
ScheduledDischargeTime X
ScheduledProcedureStepExpirationDateTime X
ScheduledStudyStartDate X
ScheduledStudyStartTime X
ScheduledStudyStopDate X
ScheduledStudyStopTime X
SecondaryCaptureDeviceID X
SelectorAEValue D
SelectorASValue D
SelectorDAValue D
SelectorDTValue D
SelectorLOValue D
SelectorLTValue D
SelectorOBValue D
SelectorPNValue D
SelectorSHValue D
SelectorSTValue D
SelectorTMValue D
SelectorUNValue D
SelectorURValue D
SelectorUTValue D
SetupTechniqueDescription X cd
ShieldingDeviceDescription X cd
SlideIdentifier X
SourceConceptualVolumeUID U
SourceEndDateTime D
SourceFrameOfReferenceUID U
SourceIdentifier D
SourceManufacturer X d
SourceOfPreviousValues Z
SourceStartDateTime D
SourceStrengthReferenceDate D
SourceStrengthReferenceTime D
SpecimenAccessionNumber X
SpecimenDetailedDescription X cd
SpecimenIdentifier D
SpecimenPreparationSequence Z
SpecimenShortDescription X cd
StationAETitle X
StructureSetDate Z
StructureSetDescription X cd
StructureSetLabel D
StructureSetName X
StructureSetTime Z
StudyArrivalDate X
StudyArrivalTime X
StudyCompletionDate X
StudyCompletionTime X
StudyReadDate X
StudyReadTime X
StudyVerifiedDate X
StudyVerifiedTime X
SubstanceAdministrationDateTime X
TableTopPositionAlignmentUID U
TelephoneNumberTrial X
TemplateLocalVersion X
TemplateVersion X
Time D
TimeOfDocumentCreationOrVerbalTransactionTrial X
TimeOfSecondaryCapture X
TransducerIdentificationSequence X
TreatmentControlPointDate D
TreatmentControlPointTime D
TreatmentDate X/D
TreatmentPositionGroupLabel D
TreatmentPositionGroupUID U
TreatmentSessionUID U
TreatmentSite X/D
TreatmentSites X
TreatmentTechniqueNotes Z cd
TreatmentTime X/D
TreatmentToleranceViolationDateTime D
TreatmentToleranceViolationDescription D cd
UDISequence X d
UnformattedTextValue D
UniqueDeviceIdentifier X d
UserContentLabel D
UserContentLongLabel D
VerbalSourceIdentifierCodeSequenceTrial X
VerbalSourceTrial X
VerificationDateTime D
WaveformAnnotationSequence X/D
WaveformFilterDescription X cd
XRayDetectorID D d
XRayDetectorLabel X d
XRaySourceID D d
"""

# Rows of the current edition whose tags are newer than pydicom's dictionary:
# ``gggg,eeee BASIC VR Name [| flags]``.
RAW_ROWS = """
0008,1301 X SQ Principal Diagnosis Code Sequence
0008,1302 X SQ Primary Diagnosis Code Sequence
0008,1303 X SQ Secondary Diagnoses Code Sequence
0008,1304 X SQ Histological Diagnoses Code Sequence
0010,0011 X SQ Person Names to Use Sequence
0010,0012 X LT Name to Use
0010,0013 X UT Name to Use Comment
0010,0014 X SQ Third Person Pronouns Sequence
0010,0015 X SQ Pronoun Code Sequence
0010,0016 X UT Pronoun Comment
0010,0041 X SQ Gender Identity Sequence
0010,0042 X UT Sex Parameters for Clinical Use Category Comment
0010,0043 X SQ Sex Parameters for Clinical Use Category Sequence
0010,0044 X SQ Gender Identity Code Sequence
0010,0045 X UT Gender Identity Comment
0010,0046 X SQ Sex Parameters for Clinical Use Category Code Sequence
0010,0047 X UR Sex Parameters for Clinical Use Category Reference
0010,2162 X SQ Ethnic Groups | p
0040,A034 X DT Effective Start DateTime
0040,A035 X DT Effective Stop DateTime
0040,B034 X DT Annotation DateTime
0040,B036 X DT Segment Definition DateTime
0040,B03B X LO Montage Name
0040,B03F X LO Montage Channel Label
0040,E012 X UR Display URI
"""


def _cells(basic: str, flags: list[str], vr: str) -> dict[str, str]:
    row = {c: "" for c in COLUMNS}
    row["basic"] = basic
    if vr in ("DA", "DT", "TM"):
        row["rtn_long_full_dates"] = "K"
        row["rtn_long_modif_dates"] = "C"
    if "U" in basic:
        row["rtn_uids"] = "K"
    for flag in flags:
        col, code = FLAG_CELLS[flag]
        row[col] = code
    return row


def build_rows() -> list[list[str]]:
    rows = []
    seen = set()
    for line in (SOURCE + SOURCE_REVIEWED).strip().splitlines():
        if not line.strip():
            continue
        keyword, basic, *flags = line.split()
        tag = tag_for_keyword(keyword)
        if tag is None:
            raise SystemExit(f"unknown keyword in SOURCE: {keyword}")
        if tag in seen:
            raise SystemExit(f"duplicate keyword in SOURCE: {keyword}")
        seen.add(tag)
        vr, _vm, name, _retired, _kw = get_entry(tag)
        cells = _cells(basic, flags, dictionary_VR(tag))
        rows.append([f"{tag >> 16:04X},{tag & 0xFFFF:04X}", keyword, name, vr]
                    + [cells[c] for c in COLUMNS])
    for line in RAW_ROWS.strip().splitlines():
        head, _, flags = line.partition("|")
        tag, basic, vr, *name = head.split()
        cells = _cells(basic, flags.split(), vr)
        rows.append([tag, "", " ".join(name), vr] + [cells[c] for c in COLUMNS])
    for mask, name, basic, flags, _dt in MASK_ROWS:
        cells = _cells(basic, flags.split(), "")
        rows.append([mask, "", name, ""] + [cells[c] for c in COLUMNS])
    rows.sort(key=lambda r: r[0])
    return rows


def render() -> str:
    header = ["tag", "keyword", "name", "vr", *COLUMNS]
    lines = ["# PS3.15 Table E.1-1, generated by build_table.py -- do not edit by hand",
             "\t".join(header)]
    lines += ["\t".join(r) for r in build_rows()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        if TSV.read_text() != text:
            print(f"{TSV} is out of date; run build_table.py", file=sys.stderr)
            return 1
        return 0
    TSV.write_text(text)
    print(f"wrote {TSV} ({text.count(chr(10)) - 2} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
