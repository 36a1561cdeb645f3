package simengine

import "container/list"

// DefaultBlockSize is the prefix cache's block size in tokens: vLLM's
// default.
const DefaultBlockSize = 16

// blockSeed starts the hash of every block; xored with the previous
// block's hash, it chains each block to everything before it.
const blockSeed uint64 = 0x9AC3_7C1E_5EED_B10C

// fnvPrime64 is FNV-1a's 64-bit prime.
const fnvPrime64 = 0x100000001b3

// blockHasher counts the tokens of a prompt and, when size > 0, hashes each
// full block of size tokens as vLLM's automatic prefix caching does: a
// block's hash covers its own token ids and its predecessor's hash, so two
// prompts have a block's hash in common exactly when they share every token
// up to that block's end. The last, partial block gets no hash: only full
// blocks are cached.
type blockHasher struct {
	size   int
	tokens int      // tokens seen
	n      int      // tokens in the current block
	cur    uint64   // running hash of the current block
	blocks []uint64 // hashes of the full blocks, in order
}

func newBlockHasher(size int) *blockHasher {
	return &blockHasher{size: size, cur: blockSeed}
}

// add appends one token id.
func (h *blockHasher) add(id int) {
	h.tokens++
	if h.size <= 0 {
		return
	}
	// FNV-1a over the block's token ids, the block finished with
	// splitmix64: cheap per token (this runs before the request reaches
	// the engine, inside its client's TTFC), well mixed per block.
	h.cur = (h.cur ^ uint64(id)) * fnvPrime64
	h.n++
	if h.n == h.size {
		b := mix(h.cur)
		h.blocks = append(h.blocks, b)
		h.n, h.cur = 0, b^blockSeed
	}
}

// addText appends the tokens of text.
func (h *blockHasher) addText(text string) {
	if h.size <= 0 {
		h.tokens += CountTokens(text)
		return
	}
	forEachToken(text, func(tok string) { h.add(tokenID(tok)) })
}

// addChat appends a chat prompt, template included: the same tokens as
// chatTokenIDs, so the count is ChatPromptTokens.
func (h *blockHasher) addChat(msgs []chatMessage, addGenerationPrompt bool) {
	for _, m := range msgs {
		h.add(tokStartHeader)
		h.add(tokenID(m.Role))
		h.add(tokEndHeader)
		h.addText(m.Content.Text)
		h.add(tokEndOfTurn)
	}
	if addGenerationPrompt {
		h.add(tokStartHeader)
		h.add(tokenID("assistant"))
		h.add(tokEndHeader)
	}
}

// prefixCache is the set of cached prompt blocks, by hash, with least
// recently used eviction beyond capacity blocks. It models vLLM's cache of
// freed KV blocks closely enough for timing: a block once computed is found
// by later prompts that share it until capacity newer blocks have been
// used. Unlike vLLM, the blocks are not taken from the KV cache that
// admission reserves (the simulated engine reserves every request's full
// prompt), and only prompt blocks are cached, not generated ones. Engine
// goroutine only.
type prefixCache struct {
	capacity int
	lru      *list.List // of uint64 hashes, most recently used first
	byHash   map[uint64]*list.Element
}

func newPrefixCache(capacity int) *prefixCache {
	return &prefixCache{capacity: capacity, lru: list.New(), byHash: map[uint64]*list.Element{}}
}

// match returns how many of the leading blocks, at most limit, are cached,
// and marks them used.
func (c *prefixCache) match(blocks []uint64, limit int) int {
	n := 0
	for _, b := range blocks[:min(limit, len(blocks))] {
		e, ok := c.byHash[b]
		if !ok {
			break
		}
		c.lru.MoveToFront(e)
		n++
	}
	return n
}

// insert caches a computed block, evicting the least recently used one
// when the cache is full.
func (c *prefixCache) insert(b uint64) {
	if e, ok := c.byHash[b]; ok {
		c.lru.MoveToFront(e)
		return
	}
	c.byHash[b] = c.lru.PushFront(b)
	if c.lru.Len() > c.capacity {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.byHash, old.Value.(uint64))
	}
}

// len is the number of cached blocks.
func (c *prefixCache) len() int { return c.lru.Len() }
