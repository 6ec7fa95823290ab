import Testing
@testable import State

/// `LoadSource.root`: while an image loads, every object reaches the root
/// (the object the image was saved from), whose fields are loaded first.
@Suite struct LoadRootTests {
    /// Names no owner in its image: takes the root it is loaded under, as
    /// an older image's socket takes the kernel being loaded.
    final class Member: Savable {
        static let savedTypeName = "test.root.Member"
        var ownerName: String?

        func save(to sink: inout SaveSink) throws {}

        func load(from source: inout LoadSource) throws {
            ownerName = (source.root as? Owner)?.name
        }
    }

    final class Owner: Savable {
        static let savedTypeName = "test.root.Owner"
        var name = ""
        var members: [Member] = []

        func save(to sink: inout SaveSink) throws {
            try sink.save("name", name)
            try sink.save("members", members)
        }

        func load(from source: inout LoadSource) throws {
            name = try source.load("name")
            members = try source.load("members")
        }
    }

    /// Holds a member before its owner, so the owner comes last in the image.
    final class Holder: Savable {
        static let savedTypeName = "test.root.Holder"
        var member = Member()
        var owner = Owner()

        func save(to sink: inout SaveSink) throws {
            try sink.save("member", member)
            try sink.save("owner", owner)
        }

        func load(from source: inout LoadSource) throws {
            member = try source.load("member")
            owner = try source.load("owner")
        }
    }

    static var registry: StateRegistry {
        var registry = StateRegistry()
        registry.register(Member.self)
        registry.register(Owner.self)
        registry.register(Holder.self)
        return registry
    }

    @Test func aMemberReadsTheLoadedRoot() throws {
        let owner = Owner()
        owner.name = "kernel"
        owner.members = [Member(), Member()]
        let loaded = try StateDecoder(registry: Self.registry)
            .decode(try StateEncoder.encode(root: owner, registry: Self.registry), as: Owner.self)
        #expect(loaded.members.map(\.ownerName) == ["kernel", "kernel"])
    }

    /// An image whose root is not its first object (a writer may order
    /// objects as it likes): the root still loads before the objects ahead
    /// of it, so they read its fields, not its fresh `init()` values.
    @Test func theRootLoadsFirstWhereverItIsInTheImage() throws {
        let holder = Holder()
        holder.owner.name = "kernel"
        holder.owner.members = [holder.member]
        var bytes = try StateEncoder.encode(root: holder, registry: Self.registry)
        let stream = try StateStream(bytes: bytes)
        let names = stream.typeNames
        let ownerID = try #require(stream.objects.firstIndex { names[$0.typeIndex] == Owner.savedTypeName }) + 1
        let memberID = try #require(stream.objects.firstIndex { names[$0.typeIndex] == Member.savedTypeName }) + 1
        #expect(memberID < ownerID && ownerID < 0x80 && stream.rootID == 1)
        // The root's ID is the stream's last varint (one byte here).
        bytes[bytes.count - 1] = UInt8(ownerID)
        let loaded = try StateDecoder(registry: Self.registry).decode(bytes, as: Owner.self)
        #expect(loaded.members.first?.ownerName == "kernel")
    }
}
