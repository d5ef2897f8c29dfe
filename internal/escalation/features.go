package escalation

// The feature vector is fixed: the model file names its features, and a name
// this list does not know is an error. Append new features at the end; never
// reorder, so that older model files keep their meaning.
const (
	// heuristics: one request on its own
	fDeclaredLibrary = iota
	fNoClientHints
	fNoFetchMetadata
	fNoAcceptLanguage
	fAcceptAnyPage
	fLibraryHeaderOrder
	fUnusualMethod
	fProbePath
	fTrapHit
	fChallengeFail
	fChallengePass
	// behaviour: decayed windows per IP, subnet and fingerprint
	fPageRate
	fRegularity
	fDistinctPaths
	fNoAssets
	fNotFound
	fRobotsDisallowed
	fTrapHistory
	fFailHistory
	fPassHistory
	fSharedFingerprint
	fSubnetPressure
	// navigation: page-to-page transitions
	fImprobableNavigation

	numFeatures
)

// Stage names, used in reasons, Verdict.Stopped and metrics.
const (
	StageHeuristics = "heuristics"
	StageBehaviour  = "behaviour"
	StageNavigation = "navigation"
	StageModel      = "model"
	StageGreyZone   = "greyzone"
)

type featureInfo struct {
	name, stage, detail string
}

// features describes each entry of the vector; detail is the static text
// carried in a reason (static so that scoring does not allocate strings).
var features = [numFeatures]featureInfo{
	fDeclaredLibrary:      {"declared_library", StageHeuristics, "user agent declares an HTTP library or automation tool"},
	fNoClientHints:        {"no_client_hints", StageHeuristics, "Chromium user agent without Sec-Ch-Ua"},
	fNoFetchMetadata:      {"no_fetch_metadata", StageHeuristics, "browser user agent without Sec-Fetch-* headers"},
	fNoAcceptLanguage:     {"no_accept_language", StageHeuristics, "browser user agent without Accept-Language"},
	fAcceptAnyPage:        {"accept_any_page", StageHeuristics, "page request from a browser with Accept: */*"},
	fLibraryHeaderOrder:   {"library_header_order", StageHeuristics, "header order matches an HTTP library"},
	fUnusualMethod:        {"unusual_method", StageHeuristics, "unusual HTTP method"},
	fProbePath:            {"probe_path", StageHeuristics, "path probes for admin panels or secrets"},
	fTrapHit:              {"trap_hit", StageHeuristics, "trap or tarpit hit"},
	fChallengeFail:        {"challenge_fail", StageHeuristics, "challenge failed"},
	fChallengePass:        {"challenge_pass", StageHeuristics, "challenge passed"},
	fPageRate:             {"page_rate", StageBehaviour, "pages per second from this address"},
	fRegularity:           {"regularity", StageBehaviour, "machine-regular timing between pages"},
	fDistinctPaths:        {"distinct_paths", StageBehaviour, "share of pages never requested before"},
	fNoAssets:             {"no_assets", StageBehaviour, "pages without their CSS, scripts or images"},
	fNotFound:             {"not_found", StageBehaviour, "share of requests answered 404"},
	fRobotsDisallowed:     {"robots_disallowed", StageBehaviour, "pages disallowed by robots.txt"},
	fTrapHistory:          {"trap_history", StageBehaviour, "recent trap or tarpit hits"},
	fFailHistory:          {"fail_history", StageBehaviour, "recent challenge failures"},
	fPassHistory:          {"pass_history", StageBehaviour, "recent challenge passes"},
	fSharedFingerprint:    {"shared_fingerprint", StageBehaviour, "many addresses share this client fingerprint and skip assets"},
	fSubnetPressure:       {"subnet_pressure", StageBehaviour, "subnet fetches pages fast without assets"},
	fImprobableNavigation: {"improbable_navigation", StageNavigation, "page transitions unlike human visitors'"},
}

// featureIndex maps a feature name to its position.
var featureIndex = func() map[string]int {
	m := make(map[string]int, numFeatures)
	for i, f := range features {
		m[f.name] = i
	}
	return m
}()

// FeatureNames returns the names of the feature vector, in order. Example
// feature slices and model files use these names and this order.
func FeatureNames() []string {
	out := make([]string, numFeatures)
	for i, f := range features {
		out[i] = f.name
	}
	return out
}

// featureVec is one event's features. Every feature is in [0, 1].
type featureVec [numFeatures]float64

func clamp01(x float64) float64 {
	switch {
	case x > 1:
		return 1
	case x > 0:
		return x
	}
	return 0 // also for NaN
}
