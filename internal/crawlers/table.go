package crawlers

// crawlerSpec describes one verifiable crawler: the user-agent tokens that
// claim it and where its operator publishes the addresses it crawls from.
type crawlerSpec struct {
	// name is the stable identifier used in Identity.Name, in metrics and
	// in configuration. It is also the key of the ranges map given to Parse.
	name     string
	operator string
	// file is the embedded snapshot under data/ip-ranges/.
	file string
	// source is the operator's machine-readable list, "" when the operator
	// publishes none (the snapshot then stays as shipped).
	source string
	// tokens are the user-agent product tokens the operator documents for
	// crawlers that use these ranges. They match case-insensitively as whole
	// words, so "Googlebot" also covers "Googlebot-Image" and
	// "Googlebot-News", but not "googlebot.com" in a URL.
	//
	// Only tokens whose traffic comes from these ranges belong here: a token
	// listed here but crawling from elsewhere would be reported as an
	// impostor. Google's special crawlers (AdsBot-Google,
	// Mediapartners-Google) and user-triggered fetchers (ChatGPT-User,
	// Perplexity-User) use other lists and are deliberately absent.
	tokens []string
}

// verifiedCrawlers is the table of crawlers whose addresses can be checked.
// Tokens come from the operators' crawler documentation.
var verifiedCrawlers = []crawlerSpec{
	{
		name: "googlebot", operator: "Google", file: "googlebot.txt",
		source: "https://developers.google.com/static/search/apis/ipranges/googlebot.json",
		// Google's "common crawlers", which use googlebot.json.
		tokens: []string{"Googlebot", "Storebot-Google", "Google-InspectionTool", "GoogleOther"},
	},
	{
		name: "bingbot", operator: "Microsoft", file: "bingbot.txt",
		source: "https://www.bing.com/toolbox/bingbot.json",
		tokens: []string{"bingbot"},
	},
	{
		name: "applebot", operator: "Apple", file: "applebot.txt",
		source: "https://search.developer.apple.com/applebot.json",
		tokens: []string{"Applebot"},
	},
	{
		name: "duckduckbot", operator: "DuckDuckGo", file: "duckduckbot.txt",
		// The snapshot merges DuckDuckGo's published DuckDuckBot and
		// DuckAssistBot address lists.
		tokens: []string{"DuckDuckBot", "DuckAssistBot"},
	},
	{
		name: "commoncrawl", operator: "Common Crawl", file: "commoncrawl.txt",
		source: "https://index.commoncrawl.org/ccbot.json",
		tokens: []string{"CCBot"},
	},
	{
		name: "gptbot", operator: "OpenAI", file: "openai-gptbot.txt",
		source: "https://openai.com/gptbot.json",
		tokens: []string{"GPTBot"},
	},
	{
		name: "oai-searchbot", operator: "OpenAI", file: "openai-searchbot.txt",
		source: "https://openai.com/searchbot.json",
		tokens: []string{"OAI-SearchBot"},
	},
	{
		name: "perplexitybot", operator: "Perplexity", file: "perplexitybot.txt",
		source: "https://www.perplexity.com/perplexitybot.json",
		tokens: []string{"PerplexityBot"},
	},
	{
		name: "internet-archive", operator: "Internet Archive", file: "internet-archive.txt",
		tokens: []string{"archive.org_bot", "ia_archiver"},
	},
	{
		name: "kagibot", operator: "Kagi", file: "kagibot.txt",
		tokens: []string{"Kagibot"},
	},
	{
		name: "marginalia", operator: "Marginalia Search", file: "marginalia.txt",
		tokens: []string{"search.marginalia.nu"},
	},
	{
		name: "mojeekbot", operator: "Mojeek", file: "mojeekbot.txt",
		source: "https://www.mojeek.com/mojeekbot.json",
		tokens: []string{"MojeekBot"},
	},
	{
		name: "qwantbot", operator: "Qwant", file: "qwantbot.txt",
		source: "https://help.qwant.com/wp-content/uploads/sites/latest/qwantbot.json",
		// Qwantify is the older name, still documented for 194.187.171.0/24.
		tokens: []string{"Qwantbot", "Qwantify"},
	},
	{
		name: "wikimedia-citoid", operator: "Wikimedia Foundation", file: "wikimedia-citoid.txt",
		tokens: []string{"Citoid"},
	},
	{
		name: "xai", operator: "xAI", file: "xai.txt",
		tokens: []string{"xAI-Bot"},
	},
	{
		name: "arquivo-pt", operator: "Arquivo.pt", file: "arquivo-pt.txt",
		tokens: []string{"Arquivo-web-crawler"},
	},
}

// DefaultAIAgentsURL is the upstream of the embedded ai.robots.txt list.
const DefaultAIAgentsURL = "https://raw.githubusercontent.com/ai-robots-txt/ai.robots.txt/main/robots.json"
