"""Deterministic synthetic stand-ins for the three tasks, generated from a seed with numpy only.

They power the offline quick default. Each one keeps the shapes and interfaces of the real task and is
built so that the attention variants can differ: the answer depends on how tokens or patches relate to
each other, not on any single one of them.

- IMDB-like reviews: one to three sentiment words in filler text. A negator ("not", "never", "hardly")
  flips the polarity of the next sentiment word if that word follows within ``NEGATION_SCOPE`` tokens
  (it is placed 2-5 tokens earlier, with filler in between); after negation every sentiment word of a
  review agrees with its label. ``NEGATION_RATE`` of the sentiment words are negated, so counting
  surface polarities alone is right about 73 % of the time; the rest needs the negation. Stray
  negators with no sentiment word in reach are distractors, so the presence of a negator says nothing.
  :func:`imdb_rule_label` applies the rule to a word list; every generated review satisfies it.
- CIFAR-like images: three bright blobs of random colours on a dark noisy background; the class is the
  spatial arrangement of the blobs on a 3x3 grid (a row, a column, a diagonal, an L, ...), with jitter.
  Colour carries no class information; after mean pooling, only a model that binds what it sees to where
  it sees it can tell the classes apart.
- WikiText-like text: articles from a small probabilistic grammar with long-range agreement (subject and
  verb agree in number across prepositional phrases and relative clauses; pronouns in the next sentence
  agree with the previous subject) and topic consistency within an article (each article draws its
  nouns from its topic). Laid out like the WikiText release: " = Title = " lines, blank lines, paragraphs.

Every function here is pure: same arguments, same output (numpy guarantees its Generator streams within a
release; the manifest records the generator version).
"""

from __future__ import annotations

import numpy as np

GENERATOR_VERSION = 1
SPLIT_SEED_STEP = 1_000_003  # split k of a prepared stand-in is generated from seed + k * SPLIT_SEED_STEP


def split_seeds(seed: int, splits: tuple[str, ...] | list[str]) -> dict[str, int]:
    """The generator seed of each split: ``seed`` for the first (train), then one large prime step apart."""
    return {split: seed + k * SPLIT_SEED_STEP for k, split in enumerate(splits)}

# ------------------------------------------------------------------------------------------------- IMDB-like

POSITIVE_WORDS = (
    "good", "great", "superb", "brilliant", "moving", "charming", "clever", "fresh",
    "gripping", "lovely", "stunning", "witty",
)  # fmt: skip
NEGATIVE_WORDS = (
    "bad", "awful", "boring", "dull", "weak", "clumsy", "messy", "bland",
    "tedious", "silly", "stale", "poor",
)  # fmt: skip
NEGATORS = ("not", "never", "hardly")
NEGATION_SCOPE = 6  # a negator flips the first sentiment word within this many tokens after it
NEGATION_RATE = 0.3  # share of sentiment words that are negated
_NEG_DISTANCES = (2, 3, 4, 5)
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


_N_FILLER_MAX = (len(_CONSONANTS) * len(_VOWELS)) ** 2  # distinct consonant-vowel-consonant-vowel words
_N_FIXED_WORDS = 2 + len(POSITIVE_WORDS) + len(NEGATIVE_WORDS) + len(NEGATORS)  # pad, unk and the rule's words
# The vocabulary sizes the IMDB-like generator can fill (tasks.imdb.data.vocab_size): 10 filler words at least.
IMDB_VOCAB_RANGE = (_N_FIXED_WORDS + 10, _N_FIXED_WORDS + _N_FILLER_MAX)


def _filler_words(n: int) -> list[str]:
    """``n`` distinct pronounceable pseudo-words (consonant-vowel syllables), in a fixed order."""
    words = []
    for c1 in _CONSONANTS:
        for v1 in _VOWELS:
            for c2 in _CONSONANTS:
                for v2 in _VOWELS:
                    words.append(c1 + v1 + c2 + v2)
    # A fixed stride walks through the list so neighbouring fillers do not share their first letters.
    picked = [words[(i * 97) % len(words)] for i in range(n)]
    assert len(set(picked)) == n
    return picked


def imdb_vocabulary(vocab_size: int) -> dict[str, list[str]]:
    n_special = 2  # pad, unk
    n_filler = vocab_size - n_special - len(POSITIVE_WORDS) - len(NEGATIVE_WORDS) - len(NEGATORS)
    if not IMDB_VOCAB_RANGE[0] <= vocab_size <= IMDB_VOCAB_RANGE[1]:
        low, high = IMDB_VOCAB_RANGE
        raise ValueError(f"vocab_size: the synthetic generator fills {low}..{high} words, got {vocab_size}")
    return {
        "positive": list(POSITIVE_WORDS),
        "negative": list(NEGATIVE_WORDS),
        "negators": list(NEGATORS),
        "filler": _filler_words(n_filler),
    }


def imdb_rule_label(words: list[str]) -> int | None:
    """Apply the rule: 1 (positive) or 0 (negative) by majority of effective polarities; None on a tie."""
    pos, neg, negators = set(POSITIVE_WORDS), set(NEGATIVE_WORDS), set(NEGATORS)
    score = 0
    pending: list[int] = []  # positions of negators still waiting for a sentiment word
    for i, w in enumerate(words):
        if w in negators:
            pending.append(i)
        elif w in pos or w in neg:
            polarity = 1 if w in pos else -1
            if any(i - p <= NEGATION_SCOPE for p in pending):
                polarity = -polarity
            pending = []
            score += polarity
    if score == 0:
        return None
    return int(score > 0)


def imdb_like(
    n: int,
    seq_len: int,
    vocab_size: int,
    seed: int,
    min_length: int | None = None,
    counts: tuple[int, ...] = (1, 2, 3),
    lexicon: int = len(POSITIVE_WORDS),
) -> tuple[list[str], np.ndarray]:
    """``n`` reviews (space-joined words, lengths between ``min_length`` (default ``seq_len // 2``) and
    ``seq_len``) and balanced labels; ``counts``: the numbers of sentiment words a review may hold;
    ``lexicon``: how many words of each polarity are used."""
    if seq_len < 24:
        raise ValueError(f"seq_len {seq_len} is too short for the synthetic reviews (need >= 24)")
    vocab = imdb_vocabulary(vocab_size)
    positive, negative = POSITIVE_WORDS[:lexicon], NEGATIVE_WORDS[:lexicon]
    filler = vocab["filler"]
    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, len(filler) + 1) ** 0.8
    cdf = np.cumsum(zipf / zipf.sum())
    spacing = NEGATION_SCOPE + 1
    texts: list[str] = []
    labels = np.empty(n, dtype=np.int64)
    for i in range(n):
        target = i % 2
        length = int(rng.integers(max(min_length or seq_len // 2, 12), seq_len + 1))
        fits = [kk for kk in counts if 6 + (kk - 1) * spacing <= length] or [1]
        k = fits[int(rng.integers(len(fits)))]
        eff = np.full(k, 1 if target else -1)  # after negation, every sentiment word agrees with the label
        negated = rng.random(k) < NEGATION_RATE
        idx = np.minimum(np.searchsorted(cdf, rng.random(length)), len(filler) - 1)
        words = [filler[j] for j in idx]
        # Positions: the first after a lead-in of 5 (room for a negator), then gaps >= spacing.
        slack = length - 1 - 5 - (k - 1) * spacing
        extra = rng.multinomial(slack, np.ones(k + 1) / (k + 1))
        positions = []
        pos = 5 + int(extra[0])
        for j in range(k):
            if j:
                pos += spacing + int(extra[j])
            positions.append(pos)
        occupied = set()
        for j, p in enumerate(positions):
            polarity = int(eff[j]) * (-1 if negated[j] else 1)
            pool = positive if polarity > 0 else negative
            words[p] = str(pool[int(rng.integers(len(pool)))])
            occupied.add(p)
            if negated[j]:
                q = p - _NEG_DISTANCES[int(rng.integers(len(_NEG_DISTANCES)))]
                words[q] = str(NEGATORS[int(rng.integers(len(NEGATORS)))])
                occupied.add(q)
        # Distractor negators: no sentiment word may follow within the scope.
        for _ in range(int(rng.integers(0, 3))):
            for _try in range(20):
                q = int(rng.integers(0, length))
                if q in occupied or any(0 < p - q <= NEGATION_SCOPE for p in positions):
                    continue
                words[q] = str(NEGATORS[int(rng.integers(len(NEGATORS)))])
                occupied.add(q)
                break
        label = imdb_rule_label(words)
        if label != target:  # cannot happen by construction; guard the generator itself
            raise AssertionError(f"synthetic review {i} violates its rule")
        texts.append(" ".join(words))
        labels[i] = target
    order = rng.permutation(n)
    return [texts[j] for j in order], labels[order]


# ------------------------------------------------------------------------------------------------- CIFAR-like

CIFAR_LIKE_CLASSES = (
    "top-row", "middle-row", "bottom-row", "left-column", "middle-column",
    "right-column", "diagonal", "anti-diagonal", "corner-L", "chevron",
)  # fmt: skip
# Cells of a 3x3 grid (row, col) holding the three blobs of each class.
_CIFAR_LAYOUTS = (
    ((0, 0), (0, 1), (0, 2)),
    ((1, 0), (1, 1), (1, 2)),
    ((2, 0), (2, 1), (2, 2)),
    ((0, 0), (1, 0), (2, 0)),
    ((0, 1), (1, 1), (2, 1)),
    ((0, 2), (1, 2), (2, 2)),
    ((0, 0), (1, 1), (2, 2)),
    ((0, 2), (1, 1), (2, 0)),
    ((0, 0), (2, 0), (2, 2)),
    ((0, 0), (1, 1), (0, 2)),
)


def cifar_like(
    n: int, seed: int, size: int = 32, noise: float = 4.0, blob_sizes: tuple[int, int] = (7, 10), jitter: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (n, 3, size, size) uint8 and balanced labels; the class is the blobs' arrangement."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % len(_CIFAR_LAYOUTS)
    rng.shuffle(labels)
    base = rng.integers(10, 70, size=(n, 3, 1, 1)).astype(np.float32)
    images = base + rng.normal(0.0, noise, size=(n, 3, size, size)).astype(np.float32)
    cell = size // 3
    for i in range(n):
        img = images[i]
        for r, c in _CIFAR_LAYOUTS[labels[i]]:
            colour = rng.integers(0, 120, size=3).astype(np.float32)
            colour[int(rng.integers(3))] = rng.integers(190, 256)  # one bright channel: blobs stand out
            blob = int(rng.integers(blob_sizes[0], blob_sizes[1]))
            y0 = r * cell + (cell - blob) // 2 + int(rng.integers(-jitter, jitter + 1))
            x0 = c * cell + (cell - blob) // 2 + int(rng.integers(-jitter, jitter + 1))
            y0, x0 = min(max(y0, 0), size - blob), min(max(x0, 0), size - blob)
            img[:, y0 : y0 + blob, x0 : x0 + blob] = colour[:, None, None] + rng.normal(0.0, 6.0, size=(3, blob, blob))
    images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    return images, labels


# ------------------------------------------------------------------------------------------------- WikiText-like

_TOPICS = {
    "river": [
        ("river", "rivers"),
        ("bank", "banks"),
        ("boat", "boats"),
        ("fish", "fishes"),
        ("bridge", "bridges"),
        ("mill", "mills"),
    ],
    "war": [
        ("soldier", "soldiers"),
        ("army", "armies"),
        ("battle", "battles"),
        ("fort", "forts"),
        ("general", "generals"),
        ("siege", "sieges"),
    ],
    "music": [
        ("song", "songs"),
        ("band", "bands"),
        ("album", "albums"),
        ("singer", "singers"),
        ("concert", "concerts"),
        ("chorus", "choruses"),
    ],
    "game": [
        ("player", "players"),
        ("team", "teams"),
        ("match", "matches"),
        ("coach", "coaches"),
        ("league", "leagues"),
        ("season", "seasons"),
    ],
    "church": [
        ("bishop", "bishops"),
        ("chapel", "chapels"),
        ("monk", "monks"),
        ("tower", "towers"),
        ("bell", "bells"),
        ("priest", "priests"),
    ],
    "storm": [
        ("storm", "storms"),
        ("wind", "winds"),
        ("wave", "waves"),
        ("coast", "coasts"),
        ("cloud", "clouds"),
        ("island", "islands"),
    ],
    "film": [
        ("film", "films"),
        ("actor", "actors"),
        ("scene", "scenes"),
        ("director", "directors"),
        ("studio", "studios"),
        ("critic", "critics"),
    ],
    "bird": [
        ("bird", "birds"),
        ("nest", "nests"),
        ("egg", "eggs"),
        ("wing", "wings"),
        ("feather", "feathers"),
        ("hawk", "hawks"),
    ],
}
_COMMON_NOUNS = [
    ("city", "cities"),
    ("year", "years"),
    ("man", "men"),
    ("woman", "women"),
    ("house", "houses"),
    ("road", "roads"),
]
_INTRANSITIVE = [
    ("arrives", "arrive"),
    ("falls", "fall"),
    ("grows", "grow"),
    ("remains", "remain"),
    ("returns", "return"),
    ("waits", "wait"),
    ("sleeps", "sleep"),
    ("appears", "appear"),
]
_TRANSITIVE = [
    ("sees", "see"),
    ("follows", "follow"),
    ("finds", "find"),
    ("builds", "build"),
    ("likes", "like"),
    ("leaves", "leave"),
    ("meets", "meet"),
    ("holds", "hold"),
]
_ADJECTIVES = [
    "old",
    "new",
    "large",
    "small",
    "early",
    "late",
    "famous",
    "quiet",
    "dark",
    "bright",
    "northern",
    "southern",
    "royal",
    "local",
    "second",
    "final",
]
_ADVERBS = ["later", "often", "again", "slowly", "together", "there"]
_PREPOSITIONS = ["near", "behind", "beside", "under", "with", "from"]
_DET_SG = ["a", "this", "every", "the"]
_DET_PL = ["some", "these", "many", "the"]


def wikitext_like_vocabulary() -> list[str]:
    words: set[str] = set()
    for pairs in list(_TOPICS.values()) + [_COMMON_NOUNS, _INTRANSITIVE, _TRANSITIVE]:
        for a, b in pairs:
            words.update((a, b))
    words.update(_ADJECTIVES + _ADVERBS + _PREPOSITIONS + _DET_SG + _DET_PL)
    words.update(["that", "and", "it", "they", ".", ",", "="])
    return sorted(words)


class _Grammar:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def noun_phrase(self, nouns, plural: bool, adjectives: bool = True) -> list[str]:
        out = [self.pick(_DET_PL if plural else _DET_SG)]
        if adjectives and self.rng.random() < 0.4:
            out.append(self.pick(_ADJECTIVES))
        out.append(self.pick(nouns)[1 if plural else 0])
        return out

    def verb_phrase(self, nouns, plural: bool) -> list[str]:
        if self.rng.random() < 0.5:
            out = [self.pick(_INTRANSITIVE)[1 if plural else 0]]
        else:
            out = [self.pick(_TRANSITIVE)[1 if plural else 0]]
            out += self.noun_phrase(nouns, bool(self.rng.random() < 0.5))
        if self.rng.random() < 0.25:
            out.append(self.pick(_ADVERBS))
        return out

    def sentence(self, nouns, previous_plural: bool | None) -> tuple[list[str], bool]:
        rng = self.rng
        if previous_plural is not None and rng.random() < 0.3:
            plural = previous_plural  # the pronoun agrees with the previous sentence's subject
            subject = ["they" if plural else "it"]
        else:
            plural = bool(rng.random() < 0.5)
            subject = self.noun_phrase(nouns, plural)
            r = rng.random()
            if r < 0.35:  # an attractor of the opposite number between subject and verb
                subject += [self.pick(_PREPOSITIONS)] + self.noun_phrase(nouns, not plural)
            elif r < 0.55:  # a relative clause; its own verb agrees with its own subject
                inner_plural = not plural
                subject += ["that"] + self.noun_phrase(nouns, inner_plural, adjectives=False)
                subject += [self.pick(_TRANSITIVE)[1 if inner_plural else 0]]
                if rng.random() < 0.5:
                    subject.append(",")
        words = subject + self.verb_phrase(nouns, plural)
        if rng.random() < 0.2:
            words += ["and"] + self.verb_phrase(nouns, plural)
        return words + ["."], plural


def wikitext_like(n_words: int, seed: int) -> list[str]:
    """Lines (each ending in a newline) of grammar text until about ``n_words`` words (plus one per line)."""
    rng = np.random.default_rng(seed)
    g = _Grammar(rng)
    topics = sorted(_TOPICS)
    lines: list[str] = []
    count = 0

    def add(words: list[str]) -> None:
        nonlocal count
        lines.append(" " + " ".join(words) + " \n" if words else " \n")
        count += len(words) + 1

    while count < n_words:
        topic = g.pick(topics)
        nouns = _TOPICS[topic] + _COMMON_NOUNS
        title_words = [g.pick(_ADJECTIVES), g.pick(_TOPICS[topic])[0]]
        add(["="] + title_words + ["="])
        add([])
        for _ in range(int(rng.integers(2, 5))):
            paragraph: list[str] = []
            previous = None
            for _ in range(int(rng.integers(3, 7))):
                words, previous = g.sentence(nouns, previous)
                paragraph += words
            add(paragraph)
            add([])
            if count >= n_words:
                break
    return lines
