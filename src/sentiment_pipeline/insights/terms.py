"""Distinctive terms: the words that set each class apart (log-odds ratio, informative prior)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from sentiment_pipeline.insights.result import Term

URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
MENTION = re.compile(r"@\w+")
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")  # letters, with inner apostrophes (don't)
# Longer runs of letters are not words a reader learns from (and an answer must not echo a
# megabyte-long one).
MAX_WORD_CHARS = 40
# The English stop words of scikit-learn's list, plus the stems of contractions (don't -> don).
STOP_WORDS = frozenset(
    """a about above across after afterwards again against all almost alone along already also
    although always am among amongst amoungst amount an and another any anyhow anyone anything
    anyway anywhere are around as at back be became because become becomes becoming been before
    beforehand behind being below beside besides between beyond bill both bottom but by call can
    cannot cant co con could couldnt cry de describe detail do done down due during each eg eight
    either eleven else elsewhere empty enough etc even ever every everyone everything everywhere
    except few fifteen fifty fill find fire first five for former formerly forty found four from
    front full further get give go had has hasnt have he hence her here hereafter hereby herein
    hereupon hers herself him himself his how however hundred i ie if in inc indeed interest into
    is it its itself keep last latter latterly least less ltd made many may me meanwhile might
    mill mine more moreover most mostly move much must my myself name namely neither never
    nevertheless next nine no nobody none noone nor not nothing now nowhere of off often on once
    one only onto or other others otherwise our ours ourselves out over own part per perhaps
    please put rather re same see seem seemed seeming seems serious several she should show side
    since sincere six sixty so some somehow someone something sometime sometimes somewhere still
    such system take ten than that the their them themselves then thence there thereafter thereby
    therefore therein thereupon these they thick thin third this those though three through
    throughout thru thus to together too top toward towards twelve twenty two un under until up
    upon us very via was we well were what whatever when whence whenever where whereafter whereas
    whereby wherein whereupon wherever whether which while whither who whoever whole whom whose
    why will with within without would yet you your yours yourself yourselves
    ain aren couldn didn doesn don hadn haven isn let ll mustn shan shouldn ve wasn weren won
    wouldn im ive id youre youve youll its lol rt amp""".split()
)


def tokenize(text: str) -> list[str]:
    """Lower-case words without URLs, @mentions, numbers and English stop words."""
    return [word for run in content_runs(text) for word in run]


def content_runs(text: str) -> list[list[str]]:
    """The lower-case content words of `text` in runs of neighbours: words only spaces apart,
    split wherever a stop word, a URL, an @mention, a number or punctuation came between."""
    text = MENTION.sub("\0", URL.sub("\0", text.lower().replace("\u2019", "'")))
    runs: list[list[str]] = [[]]
    end = 0
    for match in WORD.finditer(text):
        word = match.group().removesuffix("'s")
        content = (1 < len(word) <= MAX_WORD_CHARS and word not in STOP_WORDS
                   and word.split("'")[0] not in STOP_WORDS)
        if runs[-1] and (not content or text[end:match.start()].strip(" ")):
            runs.append([])
        if content:
            runs[-1].append(word)
        end = match.end()
    return [run for run in runs if run]


def log_odds_z(
    class_counts: Counter[str],
    rest_counts: Counter[str],
    prior: dict[str, float],
) -> dict[str, float]:
    """Monroe, Colaresi & Quinn (2008) log-odds-ratio z-scores, informative Dirichlet prior.

    delta_w = log((y_w + a_w) / (n + a0 - y_w - a_w)) - log((r_w + a_w) / (m + a0 - r_w - a_w)),
    var_w ~ 1 / (y_w + a_w) + 1 / (r_w + a_w), z_w = delta_w / sqrt(var_w), for every word w of
    `prior` (a_w > 0, a0 = sum of a_w); n and m are the class's and the rest's token counts.
    A one-word vocabulary has no odds (nothing else to compare with): its z is 0.
    """
    if len(prior) < 2:
        return dict.fromkeys(prior, 0.0)
    a0 = sum(prior.values())
    n, m = sum(class_counts.values()), sum(rest_counts.values())
    scores = {}
    for word, a in prior.items():
        y, r = class_counts[word], rest_counts[word]
        delta = math.log((y + a) / (n + a0 - y - a)) - math.log((r + a) / (m + a0 - r - a))
        scores[word] = delta / math.sqrt(1 / (y + a) + 1 / (r + a))
    return scores


def distinctive_terms(
    texts: Sequence[str],
    predicted: np.ndarray,
    labels: Sequence[str],
    top_n: int,
    min_count: int,
    prior_size: float | None = None,
) -> dict[str, list[Term]]:
    """The words that set each class apart from the others (one class vs the rest).

    The prior is the whole corpus' word frequencies scaled to `prior_size` pseudo-counts (None:
    the corpus' own token count, i.e. a_w = the word's corpus count). Words seen fewer than
    `min_count` times are not ranked; only words more frequent in the class (z > 0) are shown.
    """
    per_class = [Counter[str]() for _ in labels]
    for text, k in zip(texts, predicted, strict=True):
        per_class[int(k)].update(tokenize(text))
    corpus: Counter[str] = sum(per_class, Counter())
    total = sum(corpus.values())
    if not total:
        return {label: [] for label in labels}
    scale = (prior_size if prior_size is not None else total) / total
    prior = {w: c * scale for w, c in corpus.items()}
    ranked_words = {w for w, c in corpus.items() if c >= min_count}
    result = {}
    for k, label in enumerate(labels):
        rest = corpus - per_class[k]
        z = log_odds_z(per_class[k], rest, prior)
        best = sorted(
            (w for w in ranked_words if z[w] > 0 and per_class[k][w] > 0),
            key=lambda w: (-z[w], w),
        )[:top_n]
        result[label] = [Term(term=w, z=round(z[w], 4), count=per_class[k][w]) for w in best]
    return result
