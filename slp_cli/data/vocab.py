"""Embedded word lists of the synthetic corpus (docs/design.md, section 6), one table per language.

Every entry pairs a gloss with the spoken forms that express it. The contract with the
dictionary and text code (slp_cli.text.lemmas): a gloss's lemma key is ``lemma_key(gloss)``
(lower case, a trailing sense marker ``-<digits>`` removed, umlauts folded ä -> ae as
PHOENIX-2014T glosses spell them: SUEDEN), and ``fold(simplemma.lemmatize(form, lang="de"|"en"))``
of every spoken form listed here gives back that key (for Chinese, ``jieba.lcut`` keeps the
word as one token in the sentences `synth` builds). Forms were chosen so that this holds
(e.g. German "buch" lemmatizes to "buchen", so only the plural "bücher" is used);
tests/unit/test_synth.py checks it for every form. Function words (articles, prepositions,
auxiliaries, particles) have no gloss and never lemmatize to a gloss's key.

Glosses follow PHOENIX-2014T's convention (upper-case lemma of the spoken word: REGEN,
MORGEN, SUEDEN); CSL glosses are the Chinese words. A sense marker ``-1``/``-2`` appears only where
one spoken word has several signs depending on context (German "morgen": MORGEN-1 tomorrow,
MORGEN-2 morning; "bank": BANK-1 money, BANK-2 bench; "fahren" by car or by bike).

Word classes (the slots of the sentence frames in synth.py), each list in order of intended
frequency (the first entries are the most frequent, the sampler draws by Zipf rank):

* ``time``: (gloss, phrase, tense) with tense "pres" | "past" | "fut"; the last word of a
  German/English phrase is the content word, the rest are function words.
* ``region``/``place``: (gloss, phrase).
* ``weather``: (gloss, form, kind) with kind "m" (German masculine, English mass noun) or "pl".
* ``intensity``: (gloss, {kind: form}).
* ``temp``/``padj``: (gloss, form): adjectives of weather and of people (Chinese ``padj`` also
  name the degree adverb they take and whether 不 may negate them).
* ``person``: (gloss, singular, plural or None, German gender).
* ``vtr``/``vintr``: (gloss, forms, object categories) with forms (3sg, 3pl, past 3sg, past 3pl)
  (English: (3sg, base, past, past)); Chinese verbs have one form.
* ``obj``: (gloss, singular or None, plural or None, gender, category).
"""

from __future__ import annotations

# One definition of the gloss -> dictionary key contract, shared with the dictionary code.
from ..text.lemmas import fold, lemma_key  # noqa: F401  (re-exported for synth and its tests)


# --- German (DGS) ---------------------------------------------------------------------------

DE = {
    "time": [
        ("HEUTE", "heute", "pres"), ("MORGEN-1", "morgen", "fut"), ("GESTERN", "gestern", "past"),
        ("ABEND", "am abend", "pres"), ("NACHT", "in der nacht", "pres"),
        ("MORGEN-2", "am morgen", "pres"), ("MONTAG", "am montag", "fut"),
        ("DIENSTAG", "am dienstag", "fut"), ("MITTWOCH", "am mittwoch", "fut"),
        ("DONNERSTAG", "am donnerstag", "fut"), ("FREITAG", "am freitag", "fut"),
        ("SAMSTAG", "am samstag", "fut"), ("SONNTAG", "am sonntag", "fut"),
        ("WOCHENENDE", "am wochenende", "fut"), ("NACHMITTAG", "am nachmittag", "pres"),
        ("WINTER", "im winter", "pres"), ("SOMMER", "im sommer", "pres"),
        ("HERBST", "im herbst", "pres"), ("FRUEHLING", "im frühling", "pres"),
    ],
    "region": [
        ("NORDEN", "im norden"), ("SUEDEN", "im süden"), ("OSTEN", "im osten"),
        ("WESTEN", "im westen"), ("KUESTE", "an der küste"), ("ALPEN", "in den alpen"),
        ("MEER", "am meer"), ("FLACHLAND", "im flachland"), ("TAL", "im tal"),
    ],
    "weather": [
        ("REGEN", "regen", "m"), ("WOLKE", "wolken", "pl"), ("SCHNEE", "schnee", "m"),
        ("WIND", "wind", "m"), ("SCHAUER", "schauer", "pl"), ("STURM", "sturm", "m"),
        ("FROST", "frost", "m"), ("SONNENSCHEIN", "sonnenschein", "m"),
        ("SCHNEEFALL", "schneefall", "m"),
    ],
    "intensity": [
        ("STARK", {"m": "starken", "pl": "starke"}), ("LEICHT", {"m": "leichten", "pl": "leichte"}),
        ("KRAEFTIG", {"m": "kräftigen", "pl": "kräftige"}), ("VIEL", {"m": "viel", "pl": "viele"}),
    ],
    "temp": [
        ("KALT", "kalt"), ("WARM", "warm"), ("SONNIG", "sonnig"), ("KUEHL", "kühl"), ("MILD", "mild"),
        ("NASS", "nass"), ("TROCKEN", "trocken"), ("WINDIG", "windig"), ("FREUNDLICH", "freundlich"),
        ("NEBLIG", "neblig"), ("BEWOELKT", "bewölkt"), ("FROSTIG", "frostig"), ("FEUCHT", "feucht"),
    ],
    "person": [
        ("MANN", "mann", "männer", "m"), ("FRAU", "frau", "frauen", "f"), ("KIND", "kind", "kinder", "n"),
        ("LEHRER", "lehrer", None, "m"), ("MUTTER", "mutter", None, "f"), ("VATER", "vater", None, "m"),
        ("ARZT", "arzt", None, "m"), ("FREUNDIN", "freundin", None, "f"),
        ("BRUDER", "bruder", None, "m"), ("SCHWESTER", "schwester", None, "f"),
        ("STUDENT", "student", None, "m"), ("NACHBAR", "nachbar", None, "m"),
        ("POLIZIST", "polizist", None, "m"), ("LEHRERIN", "lehrerin", None, "f"),
        ("OMA", "oma", None, "f"), ("OPA", "opa", None, "m"), ("MAEDCHEN", "mädchen", None, "n"),
        ("AERZTIN", "ärztin", None, "f"),
    ],
    "padj": [
        ("MUEDE", "müde"), ("KRANK", "krank"), ("GLUECKLICH", "glücklich"), ("TRAURIG", "traurig"),
        ("HUNGRIG", "hungrig"), ("NERVOES", "nervös"), ("ZUFRIEDEN", "zufrieden"), ("FROH", "froh"),
        ("RUHIG", "ruhig"), ("STOLZ", "stolz"),
    ],
    "vtr": [
        ("KAUFEN", ("kauft", "kaufen", "kaufte", "kauften"), ("food", "drink", "read", "thing")),
        ("ESSEN", ("isst", "essen", "aß", "aßen"), ("food",)),
        ("TRINKEN", ("trinkt", "trinken", "trank", "tranken"), ("drink",)),
        ("LESEN", ("liest", "lesen", "las", "lasen"), ("read",)),
        ("SUCHEN", ("sucht", "suchen", "suchte", "suchten"), ("thing", "animal")),
        ("BRAUCHEN", ("braucht", "brauchen", "brauchte", "brauchten"), ("thing", "food")),
        ("KOCHEN", ("kocht", "kochen", "kochte", "kochten"), ("food",)),
        ("FINDEN", ("findet", "finden", "fand", "fanden"), ("thing", "animal")),
        ("VERKAUFEN", ("verkauft", "verkaufen", "verkaufte", "verkauften"), ("thing", "food", "animal")),
        ("SEHEN", ("sieht", "sehen", "sah", "sahen"), ("thing", "animal")),
        ("BRINGEN", ("bringt", "bringen", "brachte", "brachten"), ("thing", "food", "drink")),
        ("MALEN", ("malt", "malen", "malte", "malten"), ("animal", "thing")),
        ("SCHREIBEN", ("schreibt", "schreiben", "schrieb", "schrieben"), ("write",)),
    ],
    "vintr": [
        ("ARBEITEN", ("arbeitet", "arbeiten", "arbeitete", "arbeiteten")),
        ("SPIELEN", ("spielt", "spielen", "spielte", "spielten")),
        ("SCHLAFEN", ("schläft", "schlafen", "schlief", "schliefen")),
        ("WARTEN", ("wartet", "warten", "wartete", "warteten")),
        ("LERNEN", ("lernt", "lernen", "lernte", "lernten")),
        ("WOHNEN", ("wohnt", "wohnen", "wohnte", "wohnten")),
        ("SINGEN", ("singt", "singen", "sang", "sangen")),
        ("TANZEN", ("tanzt", "tanzen", "tanzte", "tanzten")),
        ("LAUFEN", ("läuft", "laufen", "lief", "liefen")),
        ("SCHWIMMEN", ("schwimmt", "schwimmen", "schwamm", "schwammen")),
    ],
    "obj": [
        ("APFEL", "apfel", "äpfel", "m", "food"), ("BUCH", None, "bücher", "n", "read"),
        ("AUTO", "auto", "autos", "n", "thing"), ("KAFFEE", "kaffee", None, "m", "drink"),
        ("BROT", "brot", None, "n", "food"), ("ZEITUNG", "zeitung", "zeitungen", "f", "read"),
        ("WASSER", "wasser", None, "n", "drink"), ("BRIEF", "brief", None, "m", "write"),
        ("MILCH", "milch", None, "f", "drink"), ("HUND", "hund", None, "m", "animal"),
        ("BLUME", "blume", "blumen", "f", "thing"), ("TASCHE", "tasche", None, "f", "thing"),
        ("COMPUTER", "computer", None, "m", "thing"), ("TELEFON", "telefon", None, "n", "thing"),
        ("KUCHEN", "kuchen", None, "m", "food"), ("TEE", "tee", None, "m", "drink"),
        ("FAHRRAD", "fahrrad", None, "n", "thing"), ("KATZE", "katze", None, "f", "animal"),
        ("SCHUH", "schuh", "schuhe", "m", "thing"), ("BILD", None, "bilder", "n", "thing"),
        ("SALAT", "salat", None, "m", "food"), ("GESCHENK", "geschenk", None, "n", "thing"),
        ("GITARRE", "gitarre", None, "f", "thing"),
    ],
    "place": [
        ("STADT", "in der stadt"), ("BUERO", "im büro"), ("WALD", "im wald"), ("KUECHE", "in der küche"),
        ("KINO", "im kino"), ("KRANKENHAUS", "im krankenhaus"), ("RESTAURANT", "im restaurant"),
        ("BIBLIOTHEK", "in der bibliothek"), ("SUPERMARKT", "im supermarkt"),
        ("BAHNHOF", "am bahnhof"), ("SEE", "am see"),
    ],
    "neg": [("NICHT", "nicht")],
    "wh": [("WO", "wo")],
}

# --- English (ASL) --------------------------------------------------------------------------

EN = {
    "time": [
        ("TODAY", "today", "pres"), ("TOMORROW", "tomorrow", "fut"), ("YESTERDAY", "yesterday", "past"),
        ("EVENING", "in the evening", "pres"), ("NIGHT", "at night", "pres"),
        ("MORNING", "in the morning", "pres"), ("MONDAY", "on monday", "fut"),
        ("TUESDAY", "on tuesday", "fut"), ("WEDNESDAY", "on wednesday", "fut"),
        ("THURSDAY", "on thursday", "fut"), ("FRIDAY", "on friday", "fut"),
        ("SATURDAY", "on saturday", "fut"), ("SUNDAY", "on sunday", "fut"),
        ("WEEKEND", "on the weekend", "fut"), ("AFTERNOON", "in the afternoon", "pres"),
        ("WINTER", "in winter", "pres"), ("SUMMER", "in summer", "pres"),
        ("AUTUMN", "in autumn", "pres"), ("SPRING", "in spring", "pres"),
    ],
    "region": [
        ("NORTH", "in the north"), ("SOUTH", "in the south"), ("EAST", "in the east"),
        ("WEST", "in the west"), ("COAST", "on the coast"), ("MOUNTAIN", "in the mountains"),
        ("SEA", "at sea"), ("VALLEY", "in the valley"), ("PLAIN", "on the plains"),
    ],
    "weather": [
        ("RAIN", "rain", "m"), ("CLOUD", "clouds", "pl"), ("SNOW", "snow", "m"), ("WIND", "wind", "m"),
        ("SHOWER", "showers", "pl"), ("STORM", "storms", "pl"), ("FROST", "frost", "m"),
        ("SUNSHINE", "sunshine", "m"), ("FOG", "fog", "m"), ("HAIL", "hail", "m"),
    ],
    "intensity": [
        ("HEAVY", {"m": "heavy", "pl": "heavy"}), ("LIGHT", {"m": "light", "pl": "light"}),
        ("STRONG", {"m": "strong", "pl": "strong"}),
    ],
    "temp": [
        ("COLD", "cold"), ("WARM", "warm"), ("SUNNY", "sunny"), ("COOL", "cool"), ("MILD", "mild"),
        ("WET", "wet"), ("DRY", "dry"), ("WINDY", "windy"), ("HOT", "hot"), ("FOGGY", "foggy"),
        ("CLOUDY", "cloudy"), ("FROSTY", "frosty"), ("HUMID", "humid"),
    ],
    "person": [
        ("MAN", "man", "men", ""), ("WOMAN", "woman", "women", ""), ("CHILD", "child", "children", ""),
        ("TEACHER", "teacher", "teachers", ""), ("MOTHER", "mother", None, ""),
        ("FATHER", "father", None, ""), ("DOCTOR", "doctor", "doctors", ""),
        ("FRIEND", "friend", "friends", ""), ("BROTHER", "brother", None, ""),
        ("SISTER", "sister", None, ""), ("STUDENT", "student", "students", ""),
        ("NEIGHBOR", "neighbor", "neighbors", ""), ("OFFICER", "officer", "officers", ""),
        ("GIRL", "girl", "girls", ""), ("BOY", "boy", "boys", ""),
        ("GRANDMOTHER", "grandmother", None, ""), ("GRANDFATHER", "grandfather", None, ""),
        ("FARMER", "farmer", "farmers", ""),
    ],
    "padj": [
        ("SLEEPY", "sleepy"), ("SICK", "sick"), ("HAPPY", "happy"), ("SAD", "sad"),
        ("HUNGRY", "hungry"), ("NERVOUS", "nervous"), ("ANGRY", "angry"), ("BUSY", "busy"),
        ("CALM", "calm"), ("PROUD", "proud"),
    ],
    "vtr": [
        ("BUY", ("buys", "buy", "bought", "bought"), ("food", "drink", "read", "thing")),
        ("EAT", ("eats", "eat", "ate", "ate"), ("food",)),
        ("DRINK", ("drinks", "drink", "drank", "drank"), ("drink",)),
        ("READ", ("reads", "read", "read", "read"), ("read",)),
        ("SEARCH", ("searches", "search", "searched", "searched"), ("thing", "animal")),
        ("NEED", ("needs", "need", "needed", "needed"), ("thing", "food")),
        ("COOK", ("cooks", "cook", "cooked", "cooked"), ("food",)),
        ("FIND", ("finds", "find", "found", "found"), ("thing", "animal")),
        ("SELL", ("sells", "sell", "sold", "sold"), ("thing", "food", "animal")),
        ("SEE", ("sees", "see", "saw", "saw"), ("thing", "animal")),
        ("BRING", ("brings", "bring", "brought", "brought"), ("thing", "food", "drink")),
        ("PAINT", ("paints", "paint", "painted", "painted"), ("animal", "thing")),
        ("WRITE", ("writes", "write", "wrote", "wrote"), ("write",)),
    ],
    "vintr": [
        ("WORK", ("works", "work", "worked", "worked")),
        ("PLAY-1", ("plays", "play", "played", "played")),
        ("SLEEP", ("sleeps", "sleep", "slept", "slept")),
        ("WAIT", ("waits", "wait", "waited", "waited")),
        ("LEARN", ("learns", "learn", "learned", "learned")),
        ("LIVE", ("lives", "live", "lived", "lived")),
        ("SING", ("sings", "sing", "sang", "sang")),
        ("DANCE", ("dances", "dance", "danced", "danced")),
        ("RUN", ("runs", "run", "ran", "ran")),
        ("SWIM", ("swims", "swim", "swam", "swam")),
    ],
    "obj": [
        ("APPLE", "apple", "apples", "", "food"), ("BOOK", "book", "books", "", "read"),
        ("CAR", "car", "cars", "", "thing"), ("COFFEE", "coffee", None, "mass", "drink"),
        ("BREAD", "bread", None, "mass", "food"), ("NEWSPAPER", "newspaper", "newspapers", "", "read"),
        ("WATER", "water", None, "mass", "drink"), ("LETTER", "letter", "letters", "", "write"),
        ("MILK", "milk", None, "mass", "drink"), ("DOG", "dog", "dogs", "", "animal"),
        ("FLOWER", "flower", "flowers", "", "thing"), ("BAG", "bag", "bags", "", "thing"),
        ("COMPUTER", "computer", "computers", "", "thing"), ("PHONE", "phone", "phones", "", "thing"),
        ("CAKE", "cake", "cakes", "", "food"), ("TEA", "tea", None, "mass", "drink"),
        ("BIKE", "bike", "bikes", "", "thing"), ("CAT", "cat", "cats", "", "animal"),
        ("SHOE", "shoe", "shoes", "", "thing"), ("PICTURE", "picture", "pictures", "", "thing"),
        ("SALAD", "salad", None, "", "food"), ("GIFT", "gift", "gifts", "", "thing"),
        ("GUITAR", "guitar", None, "", "thing"), ("CHEESE", "cheese", None, "mass", "food"),
    ],
    "place": [
        ("CITY", "in the city"), ("OFFICE", "in the office"), ("FOREST", "in the forest"),
        ("KITCHEN", "in the kitchen"), ("CINEMA", "at the cinema"), ("HOSPITAL", "at the hospital"),
        ("RESTAURANT", "in the restaurant"), ("LIBRARY", "in the library"),
        ("SUPERMARKET", "at the supermarket"), ("STATION", "at the station"), ("LAKE", "at the lake"),
        ("PARK", "in the park"), ("SCHOOL", "at school"), ("GARDEN", "in the garden"),
    ],
    "neg": [("NOT", "not")],
    "wh": [("WHERE", "where")],
}

# --- Chinese (CSL) --------------------------------------------------------------------------

ZH = {
    "time": [
        ("今天", "今天", "pres"), ("明天", "明天", "fut"), ("昨天", "昨天", "past"), ("晚上", "晚上", "pres"),
        ("早上", "早上", "pres"), ("星期一", "星期一", "fut"), ("星期二", "星期二", "fut"),
        ("星期三", "星期三", "fut"), ("星期四", "星期四", "fut"), ("星期五", "星期五", "fut"),
        ("星期六", "星期六", "fut"), ("周末", "周末", "fut"), ("下午", "下午", "pres"),
        ("冬天", "冬天", "pres"), ("夏天", "夏天", "pres"), ("秋天", "秋天", "pres"), ("春天", "春天", "pres"),
    ],
    "region": [
        ("北方", "北方"), ("南方", "南方"), ("东部", "东部"), ("西部", "西部"), ("沿海", "沿海"),
        ("山区", "山区"), ("北京", "北京"), ("上海", "上海"),
    ],
    # Chinese weather words are verb-like ("it rains"): the frame is TIME REGION 会 WEATHER.
    "weather": [
        ("下雨", "下雨", "m"), ("下雪", "下雪", "m"), ("刮风", "刮风", "m"), ("降温", "降温", "m"),
        ("打雷", "打雷", "m"), ("升温", "升温", "m"),
    ],
    "intensity": [],
    "temp": [
        ("冷", "冷"), ("热", "热"), ("暖和", "暖和"), ("凉快", "凉快"), ("干燥", "干燥"), ("潮湿", "潮湿"),
    ],
    "person": [
        ("男人", "男人", None, ""), ("女人", "女人", None, ""), ("孩子", "孩子", None, ""),
        ("老师", "老师", None, ""), ("妈妈", "妈妈", None, ""), ("爸爸", "爸爸", None, ""),
        ("医生", "医生", None, ""), ("朋友", "朋友", None, ""), ("哥哥", "哥哥", None, ""),
        ("姐姐", "姐姐", None, ""), ("学生", "学生", None, ""), ("邻居", "邻居", None, ""),
        ("警察", "警察", None, ""), ("奶奶", "奶奶", None, ""), ("爷爷", "爷爷", None, ""),
    ],
    # (gloss, form, degree adverb, may be negated with 不): jieba would read 非常高兴, 比较忙 and
    # 不饿 as one word, so those combinations are not used
    "padj": [
        ("累", "累", "非常", True), ("高兴", "高兴", "比较", True), ("饿", "饿", "非常", False),
        ("生气", "生气", "非常", True), ("紧张", "紧张", "非常", True), ("难过", "难过", "非常", True),
        ("忙", "忙", "非常", True), ("开心", "开心", "非常", True),
    ],
    "vtr": [
        ("买", "买", ("food", "drink", "read", "thing")), ("吃", "吃", ("food",)),
        ("喝", "喝", ("drink",)), ("看", "看", ("read", "thing", "animal")),
        ("找", "找", ("thing", "animal")), ("需要", "需要", ("thing", "food")),
        ("做", "做", ("food",)), ("卖", "卖", ("thing", "food", "animal")),
        ("带", "带", ("thing", "food", "drink")), ("画", "画", ("animal", "thing")),
        ("写", "写", ("write",)),
    ],
    "vintr": [
        ("工作", "工作"), ("玩", "玩"), ("睡觉", "睡觉"), ("学习", "学习"), ("唱歌", "唱歌"),
        ("跳舞", "跳舞"), ("游泳", "游泳"), ("休息", "休息"), ("等", "等"),
    ],
    "obj": [
        ("苹果", "苹果", None, "", "food"), ("报纸", "报纸", None, "", "read"),
        ("汽车", "汽车", None, "", "thing"), ("咖啡", "咖啡", None, "", "drink"),
        ("面包", "面包", None, "", "food"), ("电脑", "电脑", None, "", "thing"),
        ("牛奶", "牛奶", None, "", "drink"), ("钥匙", "钥匙", None, "", "thing"),
        ("蛋糕", "蛋糕", None, "", "food"), ("礼物", "礼物", None, "", "thing"),
        ("米饭", "米饭", None, "", "food"), ("小狗", "小狗", None, "", "animal"),
        ("杂志", "杂志", None, "", "read"), ("手机", "手机", None, "", "thing"),
        ("自行车", "自行车", None, "", "thing"), ("信", "信", None, "", "write"),
        ("衣服", "衣服", None, "", "thing"), ("果汁", "果汁", None, "", "drink"),
        ("饺子", "饺子", None, "", "food"), ("小猫", "小猫", None, "", "animal"),
        ("鸡蛋", "鸡蛋", None, "", "food"), ("帽子", "帽子", None, "", "thing"),
    ],
    "place": [
        ("办公室", "办公室"), ("公园", "公园"), ("学校", "学校"), ("图书馆", "图书馆"), ("饭店", "饭店"),
        ("医院", "医院"), ("超市", "超市"), ("车站", "车站"), ("厨房", "厨房"), ("城市", "城市"),
    ],
    "neg": [("不", "不")],
    "wh": [("哪里", "哪里")],
}

TABLES = {"de": DE, "en": EN, "zh": ZH}

# Context-dependent signs: one spoken word, two signs (the sense is given by the rest of the
# sentence). Each entry is a clause frame: the gloss sequence, with "{S}" for the subject's gloss,
# and the text, with "{s}" for the subject phrase (singular); synth.py fills them in.
SENSE_CLAUSES = {
    "de": [
        (["{S}", "GELD", "BANK-1", "BRINGEN"], "{s} bringt das geld zur bank"),
        (["WALD", "BANK-2", "{S}", "SITZEN"], "{s} sitzt im wald auf einer bank"),
        (["{S}", "AUTO", "STADT", "FAHREN-1"], "{s} fährt mit dem auto in die stadt"),
        (["{S}", "FAHRRAD", "STADT", "FAHREN-2"], "{s} fährt mit dem fahrrad in die stadt"),
    ],
    "en": [
        (["{S}", "MONEY", "BANK-1", "BRING"], "{s} brings the money to the bank"),
        (["RIVER", "BANK-2", "{S}", "SIT"], "{s} sits on the bank of the river"),
        (["{S}", "GUITAR", "PLAY-2"], "{s} plays the guitar"),
        (["{S}", "PIANO", "PLAY-2"], "{s} plays the piano"),
    ],
    "zh": [
        (["公园", "花-1", "很多"], "公园里有很多花"),
        (["{S}", "钱", "很多", "花-2"], "{s}花了很多钱"),
    ],
}

# The words of the texts that carry no sign: articles, prepositions, auxiliaries, particles.
# None of them lemmatizes to a gloss's key.
FUNCTION_WORDS = {
    "de": frozenset("der die das den dem ein eine einen einer im in am an auf zur mit und "
                    "ist sind war waren wird werden es gibt gab".split()),
    "en": frozenset("the a an in on at of to and is are was were will be there it does do did".split()),
    "zh": frozenset("了 会 在 的 那个 非常 比较 里 有 ，".split()),
}


# --- the long tail ------------------------------------------------------------------------------
# PHOENIX-2014T has ~1,085 glosses; the embedded word lists have ~150 per language. The
# benchmark preset fills the tail with nouns of the "thing" category: pseudo-words in German
# or English spelling (lemmatizers keep unknown words as they are), and for Chinese real
# nouns from jieba's own dictionary (so jieba keeps them as one token).

_ONSETS = {
    "de": "b br d dr f fl g gr h k kl kr l m n p pl r s sch sp st t tr w z".split(),
    "en": "b bl br d dr f fl g gl gr h j k l m n p pl r s sk sl st t tr v w".split(),
}
_VOWELS = {"de": "a e i o u au ei ä ö ü".split(), "en": "a e i o u oo ai".split()}
_CODAS = {
    "de": "lk rk lt nt mp rn lm sk ft cht rz nk".split(),
    "en": "lk rk lt nt mp rn lm sk ft nk sp".split(),
}


def pseudo_words(lang: str, n: int, exclude: set[str], seed: int = 0) -> list[str]:
    """``n`` deterministic pseudo-words of two syllables ending in a consonant cluster (never an
    inflection ending such as -en, -er, -s, -ed, so a lemmatizer keeps them unchanged)."""
    import numpy as np

    rng = np.random.default_rng([seed, 7919, 1 if lang == "de" else 2])
    on, vo, co = _ONSETS[lang], _VOWELS[lang], _CODAS[lang]
    out: list[str] = []
    seen = set(exclude)
    while len(out) < n:
        w = (on[rng.integers(len(on))] + vo[rng.integers(len(vo))] + on[rng.integers(len(on))]
             + vo[rng.integers(len(vo))] + co[rng.integers(len(co))])
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def jieba_nouns(n: int, exclude: set[str]) -> list[str]:
    """The ``n`` most frequent two-character nouns (tag ``n``) of jieba's bundled dictionary."""
    import os

    import jieba

    path = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "n" and len(parts[0]) == 2 and parts[0] not in exclude:
                rows.append((-int(parts[1]), parts[0]))
    rows.sort()
    return [w for _, w in rows[:n]]
