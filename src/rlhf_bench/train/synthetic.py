"""Synthetic stand-ins for the RLHF datasets, used by the offline "smoke" profile.

Each generator emits records in exactly the format of the real Hugging Face dataset it
replaces, so the same loaders handle real and synthetic data:

* ``make_reviews`` -> ``stanfordnlp/imdb`` ({"text", "label"}, plus an aclImdb-style "rating").
* ``make_instructions`` -> ``Dahoas/synthetic-instruct-gptj-pairwise`` ({"prompt", "chosen", "rejected"}).
* ``make_dialogues`` -> ``Anthropic/hh-rlhf`` ({"chosen", "rejected"} whole dialogues).

The texts are built from small template tables so that tiny models trained from scratch can
learn the vocabulary in about a minute, while sentiment words come from the VADER lexicon so
that a VADER judge sees the intended signal. A few percent of records are deliberately noisy
(mixed, sarcastic, mislabelled, swapped) so that reward models and judges score high but not
perfectly, as on the real data; otherwise a pipeline bug could hide behind a trivially
separable task. Everything is drawn from ``random.Random`` instances seeded only by
``(n, seed)``; no global RNG, no sets, no clock.
"""

from __future__ import annotations

import random

# --- Reviews ---------------------------------------------------------------------------------

FILM_NOUNS = (
    "the film",
    "this movie",
    "the plot",
    "the acting",
    "the script",
    "the ending",
    "the director",
    "the cast",
    "the soundtrack",
    "the dialogue",
    "the story",
    "the music",
    "the lead actor",
    "the final scene",
    "the camera work",
    "the pacing",
)
POS_MILD = ("good", "nice", "enjoyable", "pleasant", "fun")
POS_STRONG = ("wonderful", "great", "brilliant", "beautiful", "excellent", "delightful", "superb", "moving")
NEG_MILD = ("dull", "weak", "poor", "boring", "disappointing")
NEG_STRONG = ("terrible", "awful", "horrible", "dreadful", "painful")
MILD_MODIFIERS = {1: ("quite", "fairly", "pretty"), 0: ("a bit", "rather", "somewhat")}
STRONG_MODIFIERS = ("truly", "really", "absolutely")
VERB_OPINIONS = {
    1: ("I loved {n}.", "I really enjoyed {n}.", "{N} made me smile.", "{N} was a real pleasure."),
    0: ("I hated {n}.", "{N} was a waste of time.", "{N} was a real mess.", "I did not care for {n}."),
}
# Negated opinions: the label follows the meaning, not the surface words (VADER gets some wrong).
NEGATED_OPINIONS = {
    1: (
        "{N} was not bad at all.",
        "{N} was never boring.",
        "I was not disappointed by {n}.",
        "{N} was not dull at all.",
    ),
    0: ("{N} was not good.", "{N} was hardly enjoyable.", "I did not enjoy {n}.", "{N} was not great."),
}
SARCASTIC = (
    "Oh great, another film where nothing happens.",
    "What a brilliant idea to make it three hours long.",
    "Wonderful, two hours I will never get back.",
    "Just perfect if you like staring at a wall.",
    "Superb, the plot made no sense at all.",
)
# Closings are where a policy under PPO finds its easiest reward, so each must read as its label to the
# VADER judge too: "Do not waste your money." scores +0.33 and "Skip this one." 0.0, which made an honest
# negative policy look like a reward hack in the smoke report.
CLOSINGS = {
    1: (
        "I would recommend it to anyone.",
        "I will happily watch it again.",
        "A wonderful way to spend an evening.",
        "It is worth every minute.",
    ),
    0: ("I would not recommend it.", "What a waste of time.", "Avoid this terrible film.", "I regret watching it."),
}
FILLERS = (
    "I saw it last weekend with my sister.",
    "I watched it on a rainy Sunday at home.",
    "My brother told me to see it.",
    "It runs for about two hours.",
    "The film came out last year.",
    "I went to see it with my parents.",
    "It is about {who} who {does}.",
    "The story follows {who} who {does}.",
)
WHO = ("a young woman", "an old man", "a detective", "a teacher", "a small family", "a doctor")
DOES = (
    "moves to a new city",
    "returns home after many years",
    "opens a small restaurant",
    "starts a band",
    "tries to solve a mystery",
    "travels across the country",
)
# Rating per (label, intensity level 1-3), as in aclImdb: 1-4 negative, 7-10 positive.
RATINGS = {(1, 1): (7,), (1, 2): (8,), (1, 3): (9, 10), (0, 1): (4,), (0, 2): (3,), (0, 3): (1, 2)}


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


def _fill(rng: random.Random, template: str, noun: str = "") -> str:
    return template.format(n=noun, N=_cap(noun) if noun else "", who=rng.choice(WHO), does=rng.choice(DOES))


def _opinion(rng: random.Random, polarity: int, level: int, noun: str) -> str:
    """One opinion sentence about ``noun``; ``level`` 1 mild, 2 plain, 3 strong."""
    form = rng.random()
    if form < 0.2:
        return _fill(rng, rng.choice(NEGATED_OPINIONS[polarity]), noun)
    if form < 0.4:
        return _fill(rng, rng.choice(VERB_OPINIONS[polarity]), noun)
    mild, strong = (POS_MILD, POS_STRONG) if polarity else (NEG_MILD, NEG_STRONG)
    if level == 1:
        phrase = f"{rng.choice(MILD_MODIFIERS[polarity])} {rng.choice(mild)}"
    elif level == 2:
        phrase = rng.choice(mild + strong)
    else:
        phrase = f"{rng.choice(STRONG_MODIFIERS)} {rng.choice(strong)}"
    return f"{_cap(noun)} was {phrase}."


def _review_text(rng: random.Random, label: int, level: int, kind: str) -> str:
    """Sentences: optional filler, opinions mixed with fillers, then a verdict closing sentence.

    ``kind`` is "clean", "flip" (text of the opposite sentiment), "mixed" (opinions of both
    polarities, the closing verdict decides) or "sarcastic" (negative label, positive words).
    """
    while True:
        nouns = rng.sample(FILM_NOUNS, 4)
        polarity = 1 - label if kind == "flip" else label
        if kind == "sarcastic":
            body = rng.sample(SARCASTIC, 2)
        elif kind == "mixed":
            body = [_opinion(rng, 1 - label, 2, nouns[0]), _opinion(rng, label, 1, nouns[1])]
        else:
            body = [_opinion(rng, polarity, level, noun) for noun in nouns[: rng.randint(2, 4)]]
        fillers = [_fill(rng, f) for f in rng.sample(FILLERS, 3)]
        opener = fillers[:1] if rng.random() < 0.5 else []
        body += fillers[1 : 1 + rng.randint(0, 2)]
        rng.shuffle(body)
        closing = "Enough said." if kind == "sarcastic" else rng.choice(CLOSINGS[polarity])
        text = " ".join(opener + body + [closing])
        if 25 <= len(text.split()) <= 70:
            return text


def _review(rng: random.Random, label: int) -> dict:
    """About 7% of reviews are noisy (flipped, mixed, sarcastic) so classifiers cannot reach 100%."""
    level = rng.randint(1, 3)
    r = rng.random()
    kind = "clean"
    if r < 0.025:
        kind = "flip"
    elif r < 0.07:
        kind = "sarcastic" if label == 0 and r >= 0.05 else "mixed"
    if kind in ("mixed", "sarcastic"):
        level = 1
    text = _review_text(rng, label, level, kind)
    return {"text": text, "label": label, "rating": rng.choice(RATINGS[(label, level)])}


def make_reviews(n: int, seed: int) -> list[dict]:
    """Movie reviews with graded sentiment, negations and noise: {"text", "label", "rating"}; balanced labels."""
    rng = random.Random(seed)
    labels = [i % 2 for i in range(n)]
    rng.shuffle(labels)
    return [_review(rng, label) for label in labels]


def make_unlabelled_reviews(n: int, seed: int) -> list[dict]:
    """Reviews for language-model training (label -1, rating 0), same distribution as make_reviews.

    A separate random stream is used so the LM corpus does not duplicate the labelled reviews
    generated with the same seed.
    """
    rng = random.Random(f"unlabelled:{seed}")
    labels = [i % 2 for i in range(n)]
    rng.shuffle(labels)
    return [{"text": _review(rng, label)["text"], "label": -1, "rating": 0} for label in labels]


# --- Instructions ----------------------------------------------------------------------------

CAPITALS = (
    ("France", "Paris"),
    ("Japan", "Tokyo"),
    ("Italy", "Rome"),
    ("Spain", "Madrid"),
    ("Canada", "Ottawa"),
    ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"),
    ("Peru", "Lima"),
    ("Norway", "Oslo"),
    ("Germany", "Berlin"),
)
CAPITAL_PROMPTS = ("What is the capital of {x}?", "Name the capital city of {x}.")
HOW_TO = (
    ("boil an egg", "Boil it in water for about nine minutes, then cool it."),
    ("cook rice", "Simmer one cup of rice in two cups of water for fifteen minutes."),
    ("make a cup of tea", "Pour boiling water over a tea bag and wait three minutes."),
    ("clean a cast iron pan", "Rinse it with hot water, dry it and rub in a little oil."),
    ("pack light for a trip", "Bring clothes for three days and wash them as you go."),
    ("find cheap flights", "Book early, stay flexible on dates and compare several sites."),
    ("save money each month", "Move a fixed amount to savings on the day you are paid."),
    ("make a budget", "List your income and costs, and spend less than you earn."),
    ("remember new words", "Review them with flash cards a little every day."),
    ("prepare for an exam", "Study in short sessions and test yourself on old questions."),
    ("stay hydrated", "Drink a glass of water with every meal and carry a bottle."),
    ("plant a tree", "Dig a wide hole, set the roots in, fill it and water well."),
)
HOW_TO_PROMPTS = ("Explain how to {x}.", "How do I {x}?", "What is the best way to {x}?")
TIPS = (
    ("sleeping better", "Keep a fixed bedtime and avoid screens an hour before sleep."),
    ("focusing while studying", "Put your phone in another room and work in short blocks."),
    ("staying fit", "Walk for thirty minutes every day."),
    ("travelling on a budget", "Stay in hostels and cook some of your own meals."),
    ("cooking pasta", "Salt the water well and taste the pasta a minute early."),
    ("reducing stress", "Take a short walk and breathe slowly for a few minutes."),
    ("saving on groceries", "Plan meals for the week and shop with a list."),
    ("learning a language", "Practise a little every day and speak from the start."),
    ("writing an essay", "Write a clear outline first, then fill in each part."),
    ("long flights", "Drink water, walk the aisle and sleep on the local schedule."),
)
TIP_PROMPTS = ("Give me a tip for {x}.", "Any advice on {x}?")
SCIENCE = (
    ("Why is the sky blue?", "Air scatters blue sunlight more than other colours."),
    ("What is the boiling point of water?", "Water boils at 100 degrees Celsius at sea level."),
    ("How many planets are in the solar system?", "There are eight planets in the solar system."),
    ("What do plants need to grow?", "Plants need light, water, air and nutrients from the soil."),
    ("Why does ice float?", "Ice is less dense than liquid water, so it floats."),
    ("What is the largest ocean?", "The Pacific is the largest ocean on Earth."),
    ("How long does sunlight take to reach Earth?", "Sunlight takes about eight minutes to reach Earth."),
)
HEDGES = (
    "Well, there are many things to consider here.",
    "Hmm, let me think about this for a moment.",
    "That is a good question, and it really depends on a lot of things.",
    "I am not completely sure, but I will try to answer.",
)
RAMBLE = (
    "People have different opinions about this, of course.",
    "It is hard to say for certain.",
    "There is a lot that could be said about it.",
    "Some would say one thing and some another.",
    "I have thought about this many times over the years.",
    "Everyone is different, after all.",
)
RESTATES = ("As I said before, {a}", "To repeat myself, {a}", "So, again, {a}")
RAMBLE_CLOSERS = (
    "Anyway, I hope that helps in some way.",
    "But that is just what I think, really.",
    "There is more to it, but that is the main point.",
)
# Curt non-answers: the ~2.5% of pairs whose rejected is shorter, so length is not a perfect signal.
CURT = ("No idea, sorry.", "Hard to say.", "Look it up.", "Not sure.")


def _instruction_pair(rng: random.Random) -> tuple[str, str]:
    topic = rng.randrange(5)
    if topic == 0:
        country, city = rng.choice(CAPITALS)
        return rng.choice(CAPITAL_PROMPTS).format(x=country), f"The capital of {country} is {city}."
    if topic == 1:
        a, b = rng.randint(2, 20), rng.randint(2, 20)
        return f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}."
    if topic == 2:
        task, answer = rng.choice(HOW_TO)
        return rng.choice(HOW_TO_PROMPTS).format(x=task), answer
    if topic == 3:
        goal, answer = rng.choice(TIPS)
        return rng.choice(TIP_PROMPTS).format(x=goal), answer
    return rng.choice(SCIENCE)


def _ramble(rng: random.Random, answer: str) -> str:
    """Same information as ``answer``, buried in hedges, filler and a repetition (30-60 words)."""
    low = answer[0].lower() + answer[1:]
    while True:
        filler = rng.sample(RAMBLE, rng.randint(1, 3))
        parts = [
            rng.choice(HEDGES),
            filler[0],
            f"Basically, {low}",
            *filler[1:],
            rng.choice(RESTATES).format(a=low),
            rng.choice(RAMBLE_CLOSERS),
        ]
        text = " ".join(parts)
        if 30 <= len(text.split()) <= 60:
            return text


def make_instructions(n: int, seed: int) -> list[dict]:
    """Instruction prompts with a concise chosen and a rambling rejected answer:
    {"prompt", "chosen", "rejected"}."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        prompt, chosen = _instruction_pair(rng)
        rejected = rng.choice(CURT) if rng.random() < 0.025 else _ramble(rng, chosen)
        records.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return records


# --- Dialogues -------------------------------------------------------------------------------

REQUESTS = (
    (
        "I want to start running but I get tired fast. Any advice?",
        "Start with short runs and walk breaks, and add a few minutes each week.",
    ),
    (
        "Can you help me plan a birthday party for my mom?",
        "Pick a date, invite her closest friends and cook her favourite meal.",
    ),
    ("How can I get better at drawing?", "Draw a little every day and copy simple shapes from real objects."),
    (
        "I have a job interview tomorrow. How should I prepare?",
        "Read about the company, practise your answers out loud and sleep early.",
    ),
    ("What should I cook for dinner tonight?", "A simple pasta with garlic, tomatoes and basil is quick to make."),
    ("How do I keep my houseplants alive?", "Water them when the soil is dry and give them bright, indirect light."),
    (
        "I want to learn the guitar. Where do I start?",
        "Learn three basic chords and practise switching between them every day.",
    ),
    (
        "How can I meet people in a new city?",
        "Join a club or class that matches your hobbies and say yes to invitations.",
    ),
    ("How do I write a thank you note?", "Thank them for something specific and say how it made you feel."),
)
SHARES = (
    ("I just finished my first painting!", "Finishing your first painting is a real achievement."),
    ("I ran five kilometres today for the first time.", "Five kilometres is a big step and shows real effort."),
    ("My sister had a baby last week.", "A new baby in the family is such happy news."),
    ("I passed my driving test this morning.", "Passing the driving test takes a lot of practice."),
    ("I baked bread for the first time today.", "Baking your own bread is a lovely new skill."),
)
WARM_OPEN = {
    "request": ("Great question!", "I'd be happy to help!", "Sure, I'd love to help!"),
    "share": ("That's wonderful!", "Congratulations, that's great news!", "How exciting!"),
}
WARM_CLOSE = {
    "request": (
        "You've got this, and I'm sure it will go wonderfully.",
        "Good luck, I hope you enjoy it!",
        "Let me know if you want more ideas, I'm always glad to help.",
    ),
    "share": ("I'm really proud of you!", "Keep up the wonderful work!", "Enjoy this happy moment!"),
}
CURT_OPEN = {"request": ("I don't know.", "No.", "Ugh."), "share": ("Okay.", "Whatever.", "Ugh.")}
DISMISS = {
    "request": ("That sounds boring.", "Why would you even bother?", "That is a stupid question."),
    "share": ("So what?", "That is not a big deal.", "Nobody cares about that."),
}
CURT_CLOSE = {
    "request": ("Figure it out yourself.", "Don't ask me.", "Stop wasting my time."),
    "share": ("Stop wasting my time.", "Don't bother me with that.", "Can we talk about something else?"),
}
GREETINGS = (
    ("Hi, can I ask you something?", "Of course, what do you need?"),
    ("Hello, are you there?", "Yes, I'm here. What's on your mind?"),
)
FOLLOW_UPS = ("Thanks. Anything else I should know?", "Okay. What if it doesn't work out?")
PLAIN_REPLIES = {
    "request": ("Maybe look it up online.", "It depends on your situation.", "Try it and see."),
    "share": ("I see.", "Okay, noted.", "That happens to a lot of people."),
}


def _turn(human: str, assistant: str) -> str:
    return f"\n\nHuman: {human}\n\nAssistant: {assistant}"


def _dialogue(rng: random.Random) -> dict:
    """Shared context plus a warm chosen and a curt rejected last reply.

    About 5% are noisy: swapped (2.5%) or ambiguous with two plain replies (2.5%), so a judge
    agrees with the preference most of the time but not always, as on the real hh-rlhf data.
    """
    kind = "share" if rng.random() < 0.35 else "request"
    message, content = rng.choice(SHARES if kind == "share" else REQUESTS)
    style = rng.randrange(3) if kind == "request" else rng.randrange(2)
    prefix = ""
    if style == 1:  # a greeting turn first
        prefix = _turn(*rng.choice(GREETINGS))
    elif style == 2:  # the advice is given first, the last reply answers a follow-up
        prefix, message = _turn(message, content), rng.choice(FOLLOW_UPS)
        content = "Be patient with yourself and keep going a little every day."
    chosen = " ".join([rng.choice(WARM_OPEN[kind]), content, rng.choice(WARM_CLOSE[kind])])
    rejected = " ".join(rng.choice(table[kind]) for table in (CURT_OPEN, DISMISS, CURT_CLOSE))
    r = rng.random()
    if r < 0.025:
        chosen, rejected = rejected, chosen
    elif r < 0.05:
        chosen, rejected = rng.sample(PLAIN_REPLIES[kind], 2)
    return {"chosen": prefix + _turn(message, chosen), "rejected": prefix + _turn(message, rejected)}


def make_dialogues(n: int, seed: int) -> list[dict]:
    """Human/Assistant dialogues, helpful-and-warm chosen vs unhelpful-and-curt rejected last reply:
    {"chosen", "rejected"}."""
    rng = random.Random(seed)
    return [_dialogue(rng) for _ in range(n)]
