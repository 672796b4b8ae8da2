"""Word lists of the story generator (`sandbox.corpus.stories`).

Changing any list changes the bundled corpus: bump `stories.CORPUS_VERSION` with it.
"""

from __future__ import annotations

# --- word lists -----------------------------------------------------------------------

ONSETS = (
    "b br bl ch cl d dr f fl fr g gl gr h j k kl l m n p pl pr qu r s sh sk sl sn sp st "
    "t th tr v w wh y z"
).split()
VOWELS = "a e i o u a e i o ai ea ee oo ou ie oa".split()
CODAS = ["", "", "", "n", "r", "l", "m", "s", "th", "nd", "ck", "x", "ll", "sh", "rt", "nt"]
NAME_ENDINGS = ["", "", "", "a", "o", "y", "ie", "en", "ia", "el", "is", "us", "ina", "ette"]
TOWN_ENDINGS = (
    "ton ville brook wick ford bury dale field haven moor stead worth well mere gate hollow "
    "ridge port"
).split()

# Rare names that carry non-ASCII letters (a lossy tokenizer turns them into spaces).
ACCENTED_NAMES = (
    "Zoë Chloë José Renée Björn Noël Amélie Jürgen Inés Søren Léa Dagný Ángel".split()
)

ADJECTIVES = """
big small tiny huge happy sad brave shy kind clever silly sleepy grumpy gentle curious
quiet loud bright dark shiny soft fluffy old young little tall short round warm cold cozy
windy sunny rainy muddy sparkly wooden secret hidden magic strange funny friendly busy lazy
proud wise noisy tidy messy sticky crunchy smooth bumpy spotted striped fuzzy wiggly giant
ancient lonely cheerful gloomy jolly nervous careful fearless playful patient polite sneaky
speedy slow clumsy graceful humble mighty dreamy frosty misty stormy sandy rocky grassy
leafy snowy dusty glowing twinkling whispering crooked narrow wide deep shallow empty
crowded peaceful wild tame odd marvelous wonderful enormous pretty plain fancy simple heavy
light sweet fresh squeaky rusty creaky velvety feathery prickly slippery wobbly chubby
skinny merry bouncy dizzy gleaming hollow sturdy fragile lucky mysterious shimmering
""".split()

COLORS = """
red blue green yellow orange purple pink brown black white gray silver golden teal violet
crimson amber turquoise lavender scarlet indigo maroon beige coral ivory
""".split()

ANIMALS = """
cat dog fox rabbit bear owl mouse frog duck goose hen pig cow horse goat sheep lamb deer
wolf squirrel hedgehog badger otter beaver turtle snail ladybug bee butterfly dragonfly ant
spider crab whale dolphin seal penguin parrot robin sparrow crow swan lion tiger elephant
giraffe zebra monkey panda koala kangaroo camel llama donkey puppy kitten pony dragon
unicorn raccoon mole lizard gecko octopus starfish jellyfish bat moose yak lobster hamster
chipmunk firefly caterpillar goldfish walrus flamingo peacock
""".split()

KIDS = "girl boy child".split()

PLACES = """
forest meadow garden park river lake pond beach hill mountain valley cave castle village
farm barn school library bakery market kitchen attic cellar playground field orchard island
harbor lighthouse bridge tower treehouse museum zoo station desert jungle swamp glacier
canyon waterfall greenhouse workshop classroom backyard porch rooftop street square
fountain pier circus fair theater windmill stable burrow hive cottage palace lagoon marsh
dune prairie grove tunnel shed
""".split() + ["post office", "toy shop", "bookshop", "candy store", "ice cream shop"]

OBJECTS = """
ball kite hat book box key map lamp cup spoon basket balloon blanket boot shoe sock scarf
mitten umbrella bucket shovel drum flute violin bell whistle clock coin crown ring necklace
button feather pebble shell leaf acorn pinecone flower seed jar bottle candle lantern mirror
brush crayon pencil paintbrush notebook letter envelope parcel present toy doll robot
puzzle marble yo-yo wagon bicycle sled rope ladder hammer bowl plate teapot kettle pillow
quilt sweater jacket cape mask wand telescope compass magnet jewel gem snowball sandcastle
flag ribbon bag backpack wheel broom net watering can flowerpot seashell egg pumpkin
sunflower daisy tulip rose harmonica guitar piano trumpet tambourine sticker stamp postcard
glove helmet
""".split() + ["teddy bear", "paper boat", "fishing rod", "music box", "treasure chest"]

FOODS = """
apples pears plums cherries cookies cake pie muffins sandwiches carrots bananas oranges
lemons peaches grapes strawberries blueberries bread cheese soup pancakes waffles noodles
pizza honey jam porridge popcorn pretzels dumplings rice beans corn tomatoes cucumbers
""".split()

ACTIVITIES = """
painting singing dancing reading drawing baking swimming climbing running jumping skipping
gardening fishing sailing counting whistling building knitting juggling skating sledding
exploring camping hiking drumming humming rhyming stargazing
""".split() + ["telling jokes", "flying kites", "collecting shells", "playing hide and seek"]

# (base, past) pairs of transitive verbs used with an object.
VERBS = [
    ("find", "found"), ("carry", "carried"), ("fix", "fixed"), ("paint", "painted"),
    ("wash", "washed"), ("open", "opened"), ("share", "shared"), ("hide", "hid"),
    ("throw", "threw"), ("catch", "caught"), ("build", "built"), ("draw", "drew"),
    ("polish", "polished"), ("wrap", "wrapped"), ("mend", "mended"), ("borrow", "borrowed"),
    ("return", "returned"), ("lift", "lifted"), ("push", "pushed"), ("pull", "pulled"),
    ("hold", "held"), ("keep", "kept"), ("bring", "brought"), ("lose", "lost"),
    ("decorate", "decorated"), ("follow", "followed"), ("chase", "chased"),
    ("measure", "measured"), ("sort", "sorted"), ("hug", "hugged"), ("trade", "traded"),
]

FEELINGS = """
happy sad scared excited proud worried surprised angry calm brave lonely grateful curious
nervous shy sleepy hungry cheerful grumpy confused relieved hopeful jealous embarrassed
delighted amazed bored tired joyful upset safe thankful giddy content frustrated anxious
glad thrilled
""".split()

ADVERBS = """
slowly quickly carefully happily sadly quietly loudly gently bravely softly proudly
eagerly nervously politely patiently cheerfully secretly boldly calmly
""".split()

TIMES = [
    "One sunny morning", "Early one day", "One rainy afternoon", "Late one evening",
    "On a snowy day", "On the first day of spring", "One windy autumn day", "At sunrise",
    "Just after lunch", "One foggy morning", "On a hot summer day", "Before breakfast",
] + [f"On {day}" for day in "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()]

NUMBERS = "two three four five six seven eight nine ten eleven twelve".split()

# Syllables for invented plants, stones and creatures ("moonberry", "glimmerstone").
COMPOUND_HEADS = """
moon star sun sky cloud rain snow frost dew mist glimmer shimmer twinkle whisper thunder
bramble honey silver gold copper amber velvet cinder ember pebble puddle thistle clover
maple willow fern moss pine cedar river brook ocean candle sugar cocoa pepper
""".split()
COMPOUND_TAILS = """
berry stone flower leaf bug wing fish bird root seed shell light drop bell fern weed
moth beetle nut plum cap horn tail paw fin whisker bloom
""".split()

EMOJI = ["🌟", "🐸", "🌈", "🍰", "🐝"]
