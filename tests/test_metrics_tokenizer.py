"""The metrics tokenizer reproduces coco-caption's PTB tokenizer + punctuation removal (expected strings were
produced by Stanford CoreNLP 3.4.1's PTBTokenizer -preserveLines -lowerCase, as pycocoevalcap runs it)."""
import pytest

from trainer.evaluation.metrics import ptb_tokenize, tokenize_caption

PTB_OUTPUT = {
    "A man, riding a horse.": "a man riding a horse",
    "A man's dog doesn't like the cat's toy!": "a man 's dog does n't like the cat 's toy",
    "Two people (a man and a woman) are walking.": "two people -lrb- a man and a woman -rrb- are walking",
    'The "big" red bus -- parked on the street...': "the big red bus parked on the street",
    "A black & white photo of a cat; it's cute: really?": "a black & white photo of a cat it 's cute really",
    "A T-shirt with 3.5 stars, 1,000 dollars and $5 bills.": "a t-shirt with 3.5 stars 1,000 dollars and $ 5 bills",
    "U.S. flag on a pole in Washington D.C.": "u.s. flag on a pole in washington d.c.",
    "A cat can't and won't; I cannot go. We're gonna go.": "a cat ca n't and wo n't i can not go we 're gon na go",
    "50% off sale at the store #1": "50 % off sale at the store # 1",
    "A man/woman stands near a 10:30 clock with a *star*": "a man/woman stands near a 10:30 clock with a * star *",
    "A {curly} [square] thing": "a -lcb- curly -rcb- -lsb- square -rsb- thing",
    "'Hello' said the `man` to the ''woman''": "hello said the man to the woman",
    'He said: "I\'m here" and they\'d gone, we\'ll see, I\'ve done.':
        "he said i 'm here and they 'd gone we 'll see i 've done",
    "a   multiple    spaces   caption  ": "a multiple spaces caption",
    "Mr. Smith and Dr. Jones at 5 p.m. on St. Patrick's day": "mr. smith and dr. jones at 5 p.m. on st. patrick 's day",
    "A man's hat. The men's room. James' car. The boys' toys.": "a man 's hat the men 's room james car the boys toys",
    "A dog is running-jumping over a log-": "a dog is running-jumping over a log",
    "A 2-year-old kid is e-mailing at 9am.": "a 2-year-old kid is e-mailing at 9am",
    "It's 5 o'clock. Rock 'n' roll.": "it 's 5 o'clock rock 'n' roll",
    "A man\u2019s \u201cquoted\u201d word\u2026 don\u2019t": "a man 's quoted word do n't",
    "Hello!!! What?? Ok?! Yes;no:maybe,sure.": "hello !!! what ?? ok ?! yes no maybe sure",
    "grade a. The end, plan b. the dog, vitamin C. Dog": "grade a the end plan b. the dog vitamin c. dog",
    "about -5 degrees and -3.5 and a-5 and 3-5": "about -5 degrees and -3.5 and a-5 and 3-5",
    "": "",
}


@pytest.mark.parametrize("raw, expected", list(PTB_OUTPUT.items()))
def test_matches_ptb_tokenizer_output(raw, expected):
    assert tokenize_caption(raw) == expected


def test_ptb_tokenize_returns_word_list():
    assert ptb_tokenize("A man's (red) car.") == ["a", "man", "'s", "-lrb-", "red", "-rrb-", "car"]
