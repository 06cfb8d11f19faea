"""Caption metrics of explanations against reference texts (the ``captions`` extra: nltk and
rouge-score; CIDEr-D is pure Python)."""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from vadetective.agent.core.errors import MissingExtraError
from vadetective.agent.core.types import Frozen

# ---------------------------------------------------------------------------------------------
# Caption metrics (the ``captions`` extra: nltk, rouge-score)


class CaptionScores(Frozen):
    """Text metrics of explanations against reference descriptions (0..1; CIDEr 0..10)."""

    bleu1: float
    bleu2: float
    bleu3: float
    bleu4: float
    rouge_l: float
    meteor: float
    cider: float
    meteor_synonyms: bool = Field(
        description="False when WordNet was not installed and METEOR matched exact words and stems only"
    )
    n: int
    wordnet: str | None = Field(
        default=None, description="where METEOR's WordNet came from (nltk_data or a folder)"
    )


_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens, punctuation dropped (close to COCO's PTB tokenizer + filter)."""
    return _TOKEN.findall(text.lower())


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(
        tuple(tokens[i : i + k]) for k in range(1, n + 1) for i in range(len(tokens) - k + 1)
    )


def cider_d(
    references: Sequence[Sequence[str]], hypotheses: Sequence[str], n: int = 4, sigma: float = 6.0
) -> float:
    """CIDEr-D as the COCO caption evaluation computes it (the score it reports as "CIDEr").

    TF-IDF n-gram vectors (n = 1..4) with document frequencies over the reference sets of this
    corpus; per n, the cosine between hypothesis and each reference with the hypothesis counts
    clipped to the reference's, times a Gaussian length penalty ``exp(-delta^2 / (2 sigma^2))``;
    averaged over n and references, times 10, then averaged over the corpus. Like the original,
    it needs a corpus: with a single item every IDF weight is 0. Pure Python, no extra needed.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} reference sets but {len(hypotheses)} hypotheses")
    if not hypotheses:
        raise ValueError("no hypotheses to score")
    refs_ng = [[_ngrams(tokenize(r), n) for r in refs] for refs in references]
    hyps_ng = [_ngrams(tokenize(h), n) for h in hypotheses]
    df: Counter[tuple[str, ...]] = Counter()
    for refs in refs_ng:
        df.update({g for r in refs for g in r})
    log_n = math.log(float(len(refs_ng)))

    def vec(
        c: Counter[tuple[str, ...]],
    ) -> tuple[list[dict[tuple[str, ...], float]], list[float], int]:
        v: list[dict[tuple[str, ...], float]] = [{} for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for g, tf in c.items():
            k = len(g) - 1
            v[k][g] = tf * (log_n - math.log(max(1.0, df[g])))
            norm[k] += v[k][g] ** 2
            if k == 1:  # the reference code measures length in bigrams; kept for parity
                length += tf
        return v, [math.sqrt(x) for x in norm], length

    scores = []
    for h, refs in zip(hyps_ng, refs_ng, strict=True):
        if not refs:
            raise ValueError("every hypothesis needs at least one reference")
        vh, nh, lh = vec(h)
        total = np.zeros(n)
        for r in refs:
            vr, nr, lr = vec(r)
            penalty = math.exp(-((lh - lr) ** 2) / (2 * sigma**2))
            for k in range(n):
                val = sum(min(w, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, w in vh[k].items())
                if nh[k] != 0 and nr[k] != 0:
                    val /= nh[k] * nr[k]
                total[k] += val * penalty
        scores.append(float(np.mean(total)) / len(refs) * 10.0)
    return float(np.mean(scores))


class _NoWordNet:
    """Stands in for WordNet when its corpus is not installed: no synonyms."""

    def synsets(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []


def _wordnet() -> tuple[Any, str | None]:
    from vadetective.agent.eval.wordnet import find_wordnet

    reader, source = find_wordnet()
    return (reader, source) if reader is not None else (_NoWordNet(), None)


def caption_metrics(
    references: Sequence[Sequence[str]], hypotheses: Sequence[str], wordnet: Any | None = None
) -> CaptionScores:
    """BLEU-1..4, ROUGE-L, METEOR and CIDEr of hypotheses against reference texts.

    BLEU: nltk ``corpus_bleu`` (no smoothing) on ``tokenize``d text. ROUGE-L: rouge-score's
    ``rougeL`` F-measure with the best reference, averaged. METEOR: nltk ``meteor_score``
    (best reference, averaged); synonym matching needs WordNet (``agent.eval.wordnet``: nltk's
    corpus, or the system's, e.g. Debian's ``wordnet-base``), without it exact and stem
    matches only and ``meteor_synonyms`` is False. CIDEr: ``cider_d`` (the COCO formula).

    Args:
        references: per item, one or more reference texts.
        hypotheses: per item, the generated text.
        wordnet: a WordNet reader to use for METEOR (default: nltk's, if installed).

    Raises:
        MissingExtraError: nltk or rouge-score is not installed (``vadetective[captions]``).
    """
    try:
        from nltk.translate.bleu_score import corpus_bleu
        from nltk.translate.meteor_score import meteor_score
    except ImportError as exc:
        raise MissingExtraError("nltk", "captions", "caption metrics (BLEU, METEOR)") from exc
    try:
        from rouge_score.rouge_scorer import RougeScorer
    except ImportError as exc:
        raise MissingExtraError("rouge-score", "captions", "caption metrics (ROUGE-L)") from exc
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} reference sets but {len(hypotheses)} hypotheses")
    if not hypotheses or any(not refs for refs in references):
        raise ValueError("caption metrics need at least one item, each with a reference")
    ref_tok = [[tokenize(r) for r in refs] for refs in references]
    hyp_tok = [tokenize(h) for h in hypotheses]
    bleu: list[float] = []
    with warnings.catch_warnings():
        # nltk warns when a higher-order n-gram has no match; the score is then 0, as in COCO.
        warnings.simplefilter("ignore", UserWarning)
        for k in range(1, 5):
            weights = tuple([1.0 / k] * k)
            bleu.append(float(corpus_bleu(ref_tok, hyp_tok, weights=weights)))
    scorer = RougeScorer(["rougeL"], use_stemmer=False)
    rouge = [
        scorer.score_multi(list(refs), hyp)["rougeL"].fmeasure
        for refs, hyp in zip(references, hypotheses, strict=True)
    ]
    source: str | None
    if wordnet is None:
        wordnet, source = _wordnet()
    else:
        source = None if isinstance(wordnet, _NoWordNet) else "given"
    synonyms = source is not None
    meteor = [
        meteor_score(refs, hyp, wordnet=wordnet) for refs, hyp in zip(ref_tok, hyp_tok, strict=True)
    ]
    return CaptionScores(
        bleu1=bleu[0],
        bleu2=bleu[1],
        bleu3=bleu[2],
        bleu4=bleu[3],
        rouge_l=float(np.mean(rouge)),
        meteor=float(np.mean(meteor)),
        cider=cider_d(references, hypotheses),
        meteor_synonyms=synonyms,
        n=len(hypotheses),
        wordnet=source,
    )
