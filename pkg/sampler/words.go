package sampler

// wordList returns the 256 words prompts are made of. Each is a common
// lowercase English word of at most 7 letters; preceded by a space, each is
// a single token in the BPE vocabularies of the common open models (Llama 3,
// GPT-style cl100k, Mistral), and byte-level pre-tokenizers never merge
// across the space, so a prompt of w words is w tokens plus whatever the
// server's template adds. Calibrate measures rather than trusts this.
func wordList() [256]string {
	return [256]string{
		"the", "of", "and", "to", "in", "is", "was", "for", "on", "that", "with", "as", "by", "at", "from", "it",
		"his", "an", "be", "are", "this", "which", "or", "had", "not", "but", "were", "have", "they", "one", "all", "their",
		"has", "been", "more", "who", "its", "also", "can", "other", "after", "first", "new", "two", "when", "there", "her", "would",
		"time", "into", "some", "only", "out", "up", "these", "she", "about", "may", "most", "over", "such", "many", "people", "made",
		"so", "than", "then", "them", "him", "use", "used", "year", "where", "while", "during", "well", "three", "both", "between", "under",
		"world", "back", "before", "being", "state", "through", "part", "down", "known", "work", "school", "life", "each", "last", "same", "since",
		"own", "high", "end", "long", "later", "city", "day", "did", "name", "number", "game", "make", "way", "even", "good", "see",
		"group", "four", "home", "found", "best", "five", "old", "film", "family", "any", "still", "left", "set", "off", "large", "great",
		"team", "small", "area", "show", "house", "until", "just", "open", "water", "second", "play", "based", "early", "told", "must", "against",
		"much", "come", "take", "word", "line", "next", "place", "real", "want", "again", "food", "help", "keep", "head", "give", "hand",
		"land", "lead", "case", "book", "war", "free", "fact", "love", "man", "men", "live", "red", "blue", "black", "white", "green",
		"light", "dark", "hot", "cold", "low", "run", "car", "road", "town", "field", "power", "money", "south", "north", "east", "west",
		"king", "church", "music", "party", "body", "side", "age", "form", "order", "level", "point", "law", "sea", "air", "fire", "tree",
		"star", "sun", "moon", "rock", "gold", "iron", "wood", "glass", "paper", "stone", "river", "lake", "hill", "door", "room", "bed",
		"table", "chair", "floor", "wall", "window", "box", "bag", "ship", "train", "plane", "bird", "fish", "dog", "cat", "horse", "cow",
		"bear", "lion", "egg", "milk", "bread", "rice", "tea", "wine", "salt", "sugar", "oil", "cake", "meat", "apple", "rain", "snow",
	}
}
